"""The options every cloud command that touches the fleet shares: where the broker, the store and
the data directory are, and the URL devices download bundles from."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from common import protocol
from common.options import Options
from common.signing import Signer


class CloudOptions(Options):
    broker: str = Field("mqtt://localhost:1883", description="mqtt://[user@]host[:port] or mqtts://…")
    db: str = Field("sqlite:///edgeloop-data/edgeloop.db", description="sqlite:///path or postgresql://…")
    data_dir: Path = Field(Path("edgeloop-data"), description="datasets, samples, models, bottlenecks")
    prefix: str = Field(protocol.DEFAULT_PREFIX, description="topic prefix")
    signing_key: Path | None = Field(
        None, description="Ed25519 private key (PEM) that signs model announcements (python -m cloud keygen)"
    )
    public_url: str = Field(
        "http://localhost:8080", description="the service's URL as devices reach it: announcements point there"
    )

    def signer(self) -> Signer | None:
        return Signer(self.signing_key) if self.signing_key else None
