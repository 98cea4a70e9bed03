"""`python -m edge`: the device's commands."""

from __future__ import annotations

import argparse
import logging
import sys

from edge import classify
from edge.backends import BackendUnavailable
from edge.bundle import BundleError

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    classify.add_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.func(args)
    except (BundleError, BackendUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
