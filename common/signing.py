"""Ed25519 signatures on model announcements: the registry signs (name, version, archive sha256)
with its private key and a device that is given the public key runs only bundles so signed. The
sha256 already pins the archive's bytes; the signature pins who chose them, so a broker account
that can publish announcements still cannot make a device run a bundle of its own."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

log = logging.getLogger(__name__)


class SignatureError(Exception):
    """A key that cannot be read, or an announcement whose signature does not verify."""


def message(name: str, version: str, sha256: str) -> bytes:
    return f"edgeloop-model\n{name}\n{version}\n{sha256}".encode()


def generate(private_path: Path, public_path: Path) -> None:
    """A new key pair as PEM files; the private one readable by its owner only."""
    key = Ed25519PrivateKey.generate()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    private_path.touch(mode=0o600, exist_ok=False)
    private_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public_path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _load(path: Path, private: bool) -> Ed25519PrivateKey | Ed25519PublicKey:
    try:
        data = Path(path).read_bytes()
        key = serialization.load_pem_private_key(data, None) if private else serialization.load_pem_public_key(data)
    except (OSError, ValueError, TypeError) as exc:
        raise SignatureError(f"cannot read the {'private' if private else 'public'} key {path}: {exc}") from exc
    wanted = Ed25519PrivateKey if private else Ed25519PublicKey
    if not isinstance(key, wanted):
        raise SignatureError(f"{path} is not an Ed25519 key")
    return key


class Signer:
    def __init__(self, private_key: Path) -> None:
        self._key = cast(Ed25519PrivateKey, _load(private_key, private=True))

    def sign(self, name: str, version: str, sha256: str) -> str:
        return base64.b64encode(self._key.sign(message(name, version, sha256))).decode()


class Verifier:
    def __init__(self, public_key: Path) -> None:
        self._key = cast(Ed25519PublicKey, _load(public_key, private=False))

    def verify(self, name: str, version: str, sha256: str, signature: str | None) -> None:
        if not signature:
            raise SignatureError(f"{name} {version} is not signed, and this device runs only signed models")
        try:
            self._key.verify(base64.b64decode(signature, validate=True), message(name, version, sha256))
        except (InvalidSignature, ValueError) as exc:
            raise SignatureError(f"{name} {version} is not signed by this device's trusted key") from exc
