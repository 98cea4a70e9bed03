"""The wire protocol: every MQTT topic and payload edgeloop uses, defined once.

Devices publish under `{prefix}/devices/{device_id}/…`; the cloud announces models under
`{prefix}/models/{name}`. Payloads are JSON, except samples: a JPEG whose prediction travels in
the MQTT v5 user property `meta`. Parsers raise ProtocolError on anything malformed, so a
long-running service can count it and carry on.
"""

from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA = 1
DEFAULT_PREFIX = "edgeloop"
QOS_PREDICTIONS = 1
QOS_SAMPLES = 1
QOS_TELEMETRY = 0
QOS_STATUS = 1
QOS_COMMANDS = 1
QOS_MODELS = 1
SAMPLE_META_PROPERTY = "meta"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class ProtocolError(ValueError):
    """A payload or topic that does not follow this protocol."""


def check_id(value: str, what: str = "device id") -> str:
    """Ids become topic levels and file names: no wildcards, slashes or dots at the start."""
    if not _ID.fullmatch(value):
        raise ProtocolError(f"invalid {what} {value!r}: use 1-64 of A-Z a-z 0-9 _ . -")
    return value


class Topics:
    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix.rstrip("/")

    def device(self, device_id: str, kind: str) -> str:
        return f"{self.prefix}/devices/{check_id(device_id)}/{kind}"

    def predictions(self, device_id: str) -> str:
        return self.device(device_id, "predictions")

    def samples(self, device_id: str) -> str:
        return self.device(device_id, "samples")

    def telemetry(self, device_id: str) -> str:
        return self.device(device_id, "telemetry")

    def status(self, device_id: str) -> str:
        return self.device(device_id, "status")

    def commands(self, device_id: str) -> str:
        return self.device(device_id, "commands")

    def model(self, name: str) -> str:
        return f"{self.prefix}/models/{check_id(name, 'model name')}"

    def retrain(self) -> str:
        return f"{self.prefix}/commands/retrain"

    def all_devices(self, kind: str = "+") -> str:
        return f"{self.prefix}/devices/+/{kind}"

    def parse_device_topic(self, topic: str) -> tuple[str, str]:
        """`…/devices/{id}/{kind}` -> (id, kind)."""
        parts = topic.split("/")
        head = self.prefix.split("/")
        if len(parts) != len(head) + 3 or parts[: len(head)] != head or parts[len(head)] != "devices":
            raise ProtocolError(f"not a device topic: {topic!r}")
        return check_id(parts[-2]), parts[-1]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    def encode(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def decode(cls, payload: bytes | str):
        try:
            return cls.__pydantic_validator__.validate_json(payload)  # model_validate_json, less a wrapper
        except (ValidationError, ValueError) as exc:
            raise ProtocolError(f"malformed {cls.__name__}: {exc}") from exc


class ModelRef(_Payload):
    name: str
    version: str


class Score(_Payload):
    label: str
    score: float = Field(ge=0, le=1)


class Latency(_Payload):
    infer: float = Field(ge=0, description="ms in the backend")
    total: float = Field(ge=0, description="ms from capture to publish")


class Prediction(_Payload):
    schema_: int = Field(SCHEMA, alias="schema")
    device_id: str
    seq: int = Field(ge=0, lt=2**63, description="+1 per prediction per device, kept across restarts")
    ts: float = Field(description="the frame's capture time, Unix seconds")
    model: ModelRef
    top_k: list[Score] = Field(min_length=1)
    latency_ms: Latency

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, allow_inf_nan=False)

    def encode(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


class SampleMeta(_Payload):
    """What travels beside a sample's JPEG: why it was picked and what the model said."""

    device_id: str
    seq: int = Field(ge=0, lt=2**63)
    ts: float
    model: ModelRef
    top_k: list[Score] = Field(min_length=1)
    reason: Literal["low_confidence", "random"]


class Status(_Payload):
    state: Literal["online", "offline"]
    ts: float
    model: ModelRef | None = None
    backend: str | None = None
    message: str | None = None
    group: str | None = Field(None, description="the device's rollout group (canary rollouts target groups)")


class Announcement(_Payload):
    """A model version the cloud wants devices to run (retained)."""

    name: str
    version: str
    url: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    metrics: dict[str, object] = Field(default_factory=dict)
    created: str
    groups: list[str] | None = Field(None, description="device groups it is for (a canary); None: the whole fleet")
    signature: str | None = Field(None, description="the registry's Ed25519 signature of name, version and sha256")

    def applies_to(self, group: str | None) -> bool:
        return self.groups is None or group in self.groups


class RetrainRequest(_Payload):
    model: str
    reason: str = "manual"


def telemetry(values: dict[str, object]) -> bytes:
    """Telemetry is open-ended (what a Jetson reports differs from a PC): a flat JSON object."""
    return json.dumps(values, separators=(",", ":")).encode()
