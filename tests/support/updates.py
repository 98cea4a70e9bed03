"""A model update as the registry makes it: another version of a bundle, announced retained on the broker,
signed whole with the tests' registry key (tests/support/keys.py) and a serial above every earlier one."""

import itertools
import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from common import bundle, protocol, signing
from tests.support.keys import registry_keys

_serials = itertools.count(time.time_ns() // 1_000_000)


def version_of(tiny_bundle: Path, tmp_path: Path, version: str) -> Path:
    """The same network as another version: what the registry would serve after a retraining."""
    copy = Path(shutil.copytree(tiny_bundle, tmp_path / f"v{version}" / tiny_bundle.name))
    meta = bundle.read_meta(copy).model_copy(update={"version": version})
    bundle.write_meta(copy, meta)
    return copy


def announcement(
    name: str, version: str, url: str, sha256: str, groups: list[str] | None = None, signed: bool = True, **fields
) -> protocol.Announcement:
    """An announcement with the next serial, valid for an hour; signed with the tests' registry key unless not."""
    unsigned = protocol.Announcement(
        name=name, version=version, url=url, sha256=sha256, created="now", groups=groups, serial=next(_serials),
        expires=datetime.now(timezone.utc) + timedelta(hours=1), **fields,
    )  # fmt: skip
    return signing.Signer(registry_keys()[0]).sign(unsigned) if signed else unsigned


def publish(broker, name: str, body: bytes) -> None:
    """`body` as the retained announcement of model `name`."""
    import paho.mqtt.publish as mqtt_publish

    port = int(broker.url.rsplit(":", 1)[1])
    mqtt_publish.single(f"edgeloop/models/{name}", body, qos=1, retain=True, hostname="127.0.0.1", port=port)


def announce(broker, name: str, version: str, url: str, sha256: str, **options) -> bytes:
    """Publish a signed announcement (`announcement`'s options); returns its payload, e.g. to replay it."""
    body = announcement(name, version, url, sha256, **options).encode()
    publish(broker, name, body)
    return body
