"""`python -m edge`: the device's commands."""

from __future__ import annotations

from edge import classify, command
from edge.backends import BackendUnavailable
from edge.bundle import BundleError


def main(argv: list[str] | None = None) -> int:
    return command.main(
        "python -m edge", __doc__, [classify.add_parser], (BundleError, BackendUnavailable), argv
    )
