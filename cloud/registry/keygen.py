"""`python -m cloud keygen PRIVATE PUBLIC`: the Ed25519 key pair of the registry, which signs its
announcements with the private key (serve's --signing-key); devices verify with the public one."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from cloud.registry.versions import RegistryError
from common import signing
from common.command import SubParsers

log = logging.getLogger(__name__)


def add_parser(subparsers: SubParsers) -> None:
    keygen = subparsers.add_parser("keygen", help="an Ed25519 key pair: the registry signs, devices verify")
    keygen.add_argument("private", type=Path, help="private key (PEM) for serve's --signing-key; keep it secret")
    keygen.add_argument("public", type=Path, help="public key (PEM) for the devices' --trusted-key")
    keygen.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.private.exists():
        raise RegistryError(f"{args.private} exists; refusing to replace a signing key")
    signing.generate(args.private, args.public)
    print(f"private key {args.private} (mode 600), public key {args.public}")
    return 0
