"""Ed25519 signatures on model announcements. The registry signs the whole announcement: the
canonical JSON of every field but `signature` (`canonical`), so nothing in it (the URL, a canary's
groups, the serial that orders announcements, the expiry) can be changed or dropped unnoticed. The
sha256 pins the archive's bytes; the signature pins who chose them, so a broker account that can
publish announcements still cannot make a device run a bundle of its own. A device may trust
several public keys (one PEM file holding each), so the key can be rotated without a window in
which the fleet refuses the registry's announcements."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from common import protocol

log = logging.getLogger(__name__)

SIGNATURE = "signature"
_PEM_PUBLIC = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.S)


class SignatureError(Exception):
    """A key that cannot be read, or an announcement whose signature does not verify."""


def canonical(fields: Mapping[str, object]) -> bytes:
    """What a signature covers: every field but the signature, as JSON with sorted keys, no spaces
    and ASCII only (other characters as \\u escapes). Both sides compute it from parsed JSON, so
    how a sender ordered or spaced its payload does not matter."""
    body = {key: value for key, value in fields.items() if key != SIGNATURE}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


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


def _read(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SignatureError(f"cannot read the key {path}: {exc}") from exc


def _load(data: bytes, path: Path, private: bool) -> Ed25519PrivateKey | Ed25519PublicKey:
    try:
        key = serialization.load_pem_private_key(data, None) if private else serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"cannot read the {'private' if private else 'public'} key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey if private else Ed25519PublicKey):
        raise SignatureError(f"{path} is not an Ed25519 key")
    return key


class Signer:
    def __init__(self, private_key: Path) -> None:
        self._key = cast(Ed25519PrivateKey, _load(_read(private_key), private_key, private=True))

    def sign(self, announcement: protocol.Announcement) -> protocol.Announcement:
        """The announcement with its signature of every other field, as they travel."""
        fields = json.loads(announcement.model_copy(update={SIGNATURE: None}).encode())
        signature = base64.b64encode(self._key.sign(canonical(fields))).decode()
        return announcement.model_copy(update={SIGNATURE: signature})


class Verifier:
    """The public keys a device trusts: every PEM public key in one file."""

    def __init__(self, public_keys: Path) -> None:
        blocks = _PEM_PUBLIC.findall(_read(public_keys))
        if not blocks:
            raise SignatureError(f"cannot read the public key {public_keys}: no PEM public key in it")
        self._keys = [cast(Ed25519PublicKey, _load(block, public_keys, private=False)) for block in blocks]
        log.info("trusting %d announcement signing key(s) from %s", len(self._keys), public_keys)

    def verify(self, fields: Mapping[str, object]) -> None:
        """Returns if one of the trusted keys signed these fields (a parsed announcement);
        SignatureError otherwise."""
        try:
            signature = base64.b64decode(str(fields.get(SIGNATURE) or ""), validate=True)
            message = canonical(fields)
        except ValueError as exc:
            raise SignatureError(f"unreadable signature or fields: {exc}") from exc
        for key in self._keys:
            try:
                key.verify(signature, message)
                return
            except InvalidSignature:
                continue
        raise SignatureError("not signed by any of this device's trusted keys")
