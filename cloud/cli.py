"""`python -m cloud`: the cloud side's commands."""

from __future__ import annotations

from cloud import serve
from cloud.registry import cli as registry_cli
from cloud.registry import keygen
from cloud.registry.versions import RegistryError
from cloud.retrain import cli as retrain_cli
from cloud.retrain.errors import RetrainError
from cloud.simulate import cli as simulate_cli
from cloud.store import StoreError
from cloud.sweep import cli as sweep_cli
from cloud.training import cli as training_cli
from common import command
from common.bundle import BundleError
from common.errors import ConfigError
from common.protocol import ProtocolError
from common.signing import SignatureError


def main(argv: list[str] | None = None) -> int:
    errors = (RetrainError, ConfigError, BundleError, StoreError, RegistryError, ProtocolError, SignatureError)
    commands = [
        retrain_cli.add_parser,
        sweep_cli.add_parser,
        simulate_cli.add_parser,
        serve.add_parser,
        registry_cli.add_parser,
        keygen.add_parser,
        training_cli.add_parser,
    ]
    return command.main("python -m cloud", __doc__, commands, errors, argv)
