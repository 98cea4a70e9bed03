"""The wire protocol: every MQTT topic and payload edgeloop uses, defined once.

Devices publish under `{prefix}/devices/{device_id}/…`; the cloud announces models under
`{prefix}/models/{name}`. Payloads are JSON, except samples: a JPEG whose prediction travels in
the MQTT v5 user property `meta`. WIRE, at the end, is the table of message kinds that publishers,
subscribers, the broker's ACL and the reference all read. Parsers raise ProtocolError on anything
malformed, with a reason a long-running service counts before carrying on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

SCHEMA = 1
DEFAULT_PREFIX = "edgeloop"
SAMPLE_META_PROPERTY = "meta"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class ProtocolError(ValueError):
    """A payload or topic that does not follow this protocol. `reason` is what the aggregator counts
    it under (`edgeloop_rejected_by_reason_total`): bad_json, schema, bad_topic or bad_id."""

    def __init__(self, message: str, reason: str = "schema") -> None:
        super().__init__(message)
        self.reason = reason


def check_id(value: str, what: str = "device id") -> str:
    """Ids become topic levels and file names: no wildcards, slashes or dots at the start."""
    if not _ID.fullmatch(value):
        raise ProtocolError(f"invalid {what} {value!r}: use 1-64 of A-Z a-z 0-9 _ . -", "bad_id")
    return value


_Self = TypeVar("_Self", bound="_Payload")


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, allow_inf_nan=False)

    def encode(self) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()

    @classmethod
    def decode(cls: type[_Self], payload: bytes | str) -> _Self:
        try:
            parsed: _Self = cls.__pydantic_validator__.validate_json(payload)  # model_validate_json, less a wrapper
            return parsed
        except ValueError as exc:  # pydantic's ValidationError among them
            not_json = isinstance(exc, ValidationError) and any(e["type"] == "json_invalid" for e in exc.errors())
            raise ProtocolError(f"malformed {cls.__name__}: {exc}", "bad_json" if not_json else "schema") from exc


class ModelRef(_Payload):
    name: str
    version: str


class Score(_Payload):
    label: str
    score: float = Field(ge=0, le=1)


class Latency(_Payload):
    infer: float = Field(ge=0, description="ms in the backend")
    total: float = Field(ge=0, description="ms from capture to publish")


class Classification(_Payload):
    """What the model said about one frame: the fields a prediction and a sample's meta share."""

    device_id: str
    seq: int = Field(ge=0, lt=2**63, description="+1 per prediction per device, kept across restarts")
    ts: float = Field(description="the frame's capture time, Unix seconds")
    model: ModelRef
    top_k: list[Score] = Field(min_length=1)
    camera: str | None = Field(
        None, pattern=f"^{_ID.pattern}$", description="which of the device's cameras saw the frame; absent: it has one"
    )


class Prediction(Classification):
    schema_: int = Field(SCHEMA, alias="schema")
    latency_ms: Latency


class SampleMeta(Classification):
    """What travels beside a sample's JPEG: why it was picked and what the model said."""

    reason: Literal["low_confidence", "random", "drift"] = Field(
        description="the model was unsure; a random pick; or a random pick above the base share, made while the "
        "device's predicted labels drift from its training images'"
    )

    @classmethod
    def of(cls, prediction: Prediction, reason: str) -> SampleMeta:
        return cls(**{name: getattr(prediction, name) for name in Classification.model_fields}, reason=reason)


class Status(_Payload):
    state: Literal["online", "offline"]
    ts: float
    model: ModelRef | None = None
    backend: str | None = None
    message: str | None = None
    group: str | None = Field(None, description="the device's rollout group (canary rollouts target groups)")


class Percentiles(_Payload):
    infer_p50: float = Field(ge=0, description="ms in the backend")
    infer_p99: float = Field(ge=0)
    total_p50: float = Field(ge=0, description="ms from capture to publish")
    total_p99: float = Field(ge=0)


class Telemetry(_Payload):
    """A device's figures every --telemetry-interval-s. Open-ended: keys beyond these (what a Jetson
    reports and a PC does not) are kept."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True, allow_inf_nan=False)

    schema_: int = Field(SCHEMA, alias="schema")
    device_id: str | None = None
    ts: float | None = Field(None, description="when the figures were taken, Unix seconds")
    model: ModelRef | None = Field(None, description="the model the device runs")
    backend: str | None = None
    fps: float | None = Field(None, ge=0, description="frames classified per second since the start")
    latency_ms: Percentiles | None = Field(None, description="over the last 1000 frames")
    frames: dict[str, int] | None = Field(None, description="captured, dropped, bad, processed, published…")
    cameras: dict[str, dict[str, float]] | None = Field(
        None, description="by camera name: fps, frames captured, dropped, bad and reopens, processed, published…"
    )
    samples: dict[str, int | float] | None = Field(
        None,
        description="samples picked by reason; frames held back (rate_limited, near_duplicate); random_share and "
        "label_drift (total variation distance of the predicted labels from the training images')",
    )
    outbox: dict[str, int] | None = Field(None, description="predictions pending and dropped")
    mqtt: dict[str, int] | None = Field(None, description="published, acknowledged, refused, skipped, reconnects…")
    updates: dict[str, int] | None = Field(
        None, description="model announcements received, swapped in and rejected, in all and by reason"
    )
    system: dict[str, Any] | None = Field(None, description="CPU, GPU, memory, temperatures, power (jtop or psutil)")


class Announcement(_Payload):
    """A model version the cloud wants devices to run (retained)."""

    name: str
    version: str
    url: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    metrics: dict[str, object] = Field(default_factory=dict)
    created: str
    groups: list[str] | None = Field(None, description="device groups it is for (a canary); None: the whole fleet")
    serial: int = Field(
        ge=0, lt=2**63, description="grows with every announcement of the model: a device refuses one below the last"
    )
    expires: AwareDatetime = Field(description="ISO 8601 with a zone: a device refuses the announcement after it")
    signature: str | None = Field(
        None, description="base64 Ed25519 signature of the canonical JSON (sorted keys, no spaces) of every other field"
    )

    def applies_to(self, group: str | None) -> bool:
        return self.groups is None or group in self.groups


class RetrainRequest(_Payload):
    model: str
    reason: str = "manual"


P = TypeVar("P", bound=_Payload)
Party = Literal["device", "cloud"]


@dataclass(frozen=True)
class Kind(Generic[P]):
    """One kind of message. `pattern` is its topic below the prefix, where `{device_id}` or
    `{model_name}` is one level, filled in per message and `+` in a subscription. The payload model
    parses the body, or for samples the user property `meta_property` beside a JPEG body. `sender`
    and `receiver` are what the broker's ACL grants: "cloud" is any client with the cloud's
    credentials (the service, its commands, an operator)."""

    name: str
    pattern: str
    qos: Literal[0, 1]
    retain: bool
    payload: type[P] | None  # None: not defined yet
    sender: Party
    receiver: Party
    meta_property: str | None = None
    last_will: bool = False

    def decode(self, payload: bytes | str) -> P:
        """The payload parsed by this kind's model; ProtocolError for anything else."""
        if self.payload is None:
            raise ProtocolError(f"{self.name} messages have no payload model yet", "schema")
        return self.payload.decode(payload)


# The table:        name, topic below the prefix, QoS, retain, payload model, sender, receiver, [meta property]
PREDICTIONS = Kind("predictions", "devices/{device_id}/predictions", 1, False, Prediction, "device", "cloud")
SAMPLES = Kind("samples", "devices/{device_id}/samples", 1, False, SampleMeta, "device", "cloud", SAMPLE_META_PROPERTY)
TELEMETRY = Kind("telemetry", "devices/{device_id}/telemetry", 0, False, Telemetry, "device", "cloud")
STATUS = Kind("status", "devices/{device_id}/status", 1, True, Status, "device", "cloud", last_will=True)
COMMANDS: Kind[_Payload] = Kind("commands", "devices/{device_id}/commands", 1, False, None, "cloud", "device")
MODELS = Kind("models", "models/{model_name}", 1, True, Announcement, "cloud", "device")
RETRAIN = Kind("retrain", "commands/retrain", 1, False, RetrainRequest, "cloud", "cloud")
WIRE: tuple[Kind[Any], ...] = (PREDICTIONS, SAMPLES, TELEMETRY, STATUS, COMMANDS, MODELS, RETRAIN)
_LEVELS = {"device_id": "device id", "model_name": "model name"}


class Topics:
    """The topics of WIRE's kinds under one prefix."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix.rstrip("/")

    def topic(self, kind: Kind[Any], **levels: str) -> str:
        """One message's topic; each level is checked (an id with a wildcard or a slash is refused)."""
        return f"{self.prefix}/" + kind.pattern.format(**{k: check_id(v, _LEVELS[k]) for k, v in levels.items()})

    def filter(self, kind: Kind[Any]) -> str:
        """Every topic of a kind, for a subscription."""
        return f"{self.prefix}/" + kind.pattern.format(**dict.fromkeys(_LEVELS, "+"))

    def device(self, device_id: str, kind: str) -> str:
        return f"{self.prefix}/devices/{check_id(device_id)}/{kind}"

    def predictions(self, device_id: str) -> str:
        return self.topic(PREDICTIONS, device_id=device_id)

    def samples(self, device_id: str) -> str:
        return self.topic(SAMPLES, device_id=device_id)

    def telemetry(self, device_id: str) -> str:
        return self.topic(TELEMETRY, device_id=device_id)

    def status(self, device_id: str) -> str:
        return self.topic(STATUS, device_id=device_id)

    def commands(self, device_id: str) -> str:
        return self.topic(COMMANDS, device_id=device_id)

    def model(self, name: str) -> str:
        return self.topic(MODELS, model_name=name)

    def retrain(self) -> str:
        return self.topic(RETRAIN)

    def parse_device_topic(self, topic: str) -> tuple[str, str]:
        """`…/devices/{id}/{kind}` -> (id, kind)."""
        parts = topic.split("/")
        head = self.prefix.split("/")
        if (
            len(parts) != len(head) + 3
            or parts[: len(head)] != head
            or parts[len(head)] != "devices"
            or not _ID.fullmatch(parts[-2])
        ):
            raise ProtocolError(f"not a device topic: {topic!r}", "bad_topic")
        return parts[-2], parts[-1]
