"""`python -m cloud`: the cloud side's commands."""

from __future__ import annotations

from cloud import serve
from cloud.retrain import cli as retrain_cli
from cloud.retrain.errors import RetrainError
from cloud.store import StoreError
from cloud.sweep import cli as sweep_cli
from edge import command
from edge.bundle import BundleError
from edge.flags import ConfigError


def main(argv: list[str] | None = None) -> int:
    errors = (RetrainError, ConfigError, BundleError, StoreError)
    return command.main(
        "python -m cloud", __doc__, [retrain_cli.add_parser, sweep_cli.add_parser, serve.add_parser], errors, argv
    )
