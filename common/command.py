"""The shell both `python -m edge` and `python -m cloud` share: sub-commands, logging, and user
errors printed as one line with exit status 2 instead of a traceback."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    SubParsers = argparse._SubParsersAction


def main(
    prog: str,
    description: str | None,
    commands: Sequence[Callable[[SubParsers], None]],
    user_errors: tuple[type[Exception], ...],
    argv: list[str] | None = None,
) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for add_parser in commands:
        add_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        status: int = args.func(args)
        return status
    except user_errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
