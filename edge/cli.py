"""`python -m edge`: the device's commands."""

from __future__ import annotations

from edge import bench, classify, command, run
from edge.backends import BackendUnavailable
from edge.bundle import BundleError
from edge.flags import ConfigError
from edge.signing import SignatureError
from edge.sources import SourceError


def main(argv: list[str] | None = None) -> int:
    return command.main(
        "python -m edge",
        __doc__,
        [classify.add_parser, run.add_parser, bench.add_parser],
        (BundleError, BackendUnavailable, ConfigError, SourceError, SignatureError),
        argv,
    )
