"""`python -m cloud`: the cloud side's commands."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from cloud.retrain import cli as retrain_cli
from cloud.retrain.errors import RetrainError
from edge.flags import ConfigError

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cloud", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    retrain_cli.add_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return args.func(args)
    except (RetrainError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
