"""A model update as the registry makes it: another version of a bundle, announced retained on the broker."""

import shutil
from pathlib import Path

from common import bundle, protocol


def version_of(tiny_bundle: Path, tmp_path: Path, version: str) -> Path:
    """The same network as another version: what the registry would serve after a retraining."""
    copy = Path(shutil.copytree(tiny_bundle, tmp_path / f"v{version}" / tiny_bundle.name))
    meta = bundle.read_meta(copy).model_copy(update={"version": version})
    bundle.write_meta(copy, meta)
    return copy


def announce(broker, name: str, version: str, url: str, sha256: str) -> None:
    import paho.mqtt.publish as publish

    body = protocol.Announcement(name=name, version=version, url=url, sha256=sha256, created="now")
    port = int(broker.url.rsplit(":", 1)[1])
    publish.single(f"edgeloop/models/{name}", body.encode(), qos=1, retain=True, hostname="127.0.0.1", port=port)
