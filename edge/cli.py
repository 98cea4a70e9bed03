"""`python -m edge`: the device's commands."""

from __future__ import annotations

from common import command
from common.bundle import BundleError
from common.errors import ConfigError
from common.signing import SignatureError
from edge import bench, classify, run
from edge.backends import BackendUnavailable
from edge.backends import cli as backends_cli
from edge.sources import SourceError


def main(argv: list[str] | None = None) -> int:
    return command.main(
        "python -m edge",
        __doc__,
        [classify.add_parser, run.add_parser, bench.add_parser, backends_cli.add_parser],
        (BundleError, BackendUnavailable, ConfigError, SourceError, SignatureError),
        argv,
    )
