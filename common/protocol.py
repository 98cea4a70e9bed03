"""The wire protocol: every MQTT topic and payload edgeloop uses, defined once.

Devices publish under `{prefix}/devices/{device_id}/…`; the cloud announces models under
`{prefix}/models/{name}`. Payloads are JSON, except samples: a JPEG whose prediction travels in
the MQTT v5 user property `meta`. WIRE, at the end, is the table of message kinds that publishers,
subscribers, the broker's ACL and the reference all read. Parsers raise ProtocolError on anything
malformed, with a reason a long-running service counts before carrying on. The predictions topic
carries one prediction (schema 1) or a batch of them (schema 2): `decode_predictions` reads either,
and `predictions_data` reads either into plain data, checked by the same models. With
`serve --homeassistant-discovery`, the cloud also publishes Home Assistant's MQTT discovery configs under
that system's own prefix (`homeassistant` by default) and the states they point at under ours.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, Literal, Protocol, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import SchemaValidator

SCHEMA: Final = 1
BATCH_SCHEMA: Final = 2
BATCH_MAX = 1000  # predictions in one batch
BATCH_MAX_BYTES = 1024 * 1024  # a batch's payload; a device packs fewer predictions rather than exceed it
DEFAULT_PREFIX = "edgeloop"
DEFAULT_DISCOVERY_PREFIX = "homeassistant"  # Home Assistant's own default
SAMPLE_META_PROPERTY = "meta"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class ProtocolError(ValueError):
    """A payload or topic that does not follow this protocol. `reason` is what the aggregator counts
    it under (`edgeloop_rejected_total`): bad_json, schema, bad_topic or bad_id."""

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
            raise _refused(cls.__name__, exc) from exc


def _refused(name: str, exc: ValueError) -> ProtocolError:
    """What a validation error is counted under: whether the payload was JSON at all."""
    not_json = isinstance(exc, ValidationError) and any(e["type"] == "json_invalid" for e in exc.errors())
    return ProtocolError(f"malformed {name}: {exc}", "bad_json" if not_json else "schema")


class ModelRef(_Payload):
    name: str
    version: str


class Score(_Payload):
    label: str
    score: float = Field(ge=0, le=1)


class Latency(_Payload):
    infer: float = Field(ge=0, description="ms in the backend")
    total: float = Field(ge=0, description="ms from capture to publish")


class FrameResult(_Payload):
    """What the model said about one frame, and which of the device's cameras saw it: the fields a prediction, a
    prediction in a batch and a sample's meta share."""

    seq: int = Field(ge=0, lt=2**63, description="+1 per prediction per device, kept across restarts")
    ts: float = Field(description="the frame's capture time, Unix seconds")
    model: ModelRef
    top_k: list[Score] = Field(min_length=1)
    camera: str | None = Field(
        None, pattern=f"^{_ID.pattern}$", description="which of the device's cameras saw the frame; absent: it has one"
    )


class Classification(FrameResult):
    device_id: str


class BatchedPrediction(FrameResult):
    """One prediction inside a PredictionBatch, which says once whose it is."""

    latency_ms: Latency


class Prediction(Classification, BatchedPrediction):
    """One prediction, sent alone (schema 1)."""

    schema_: Literal[1] = Field(SCHEMA, alias="schema")

    def batched(self) -> bytes:
        """This prediction encoded as an item of a batch, which `batch_payload` and `prediction_payload` take."""
        return self.model_dump_json(by_alias=True, exclude_none=True, exclude={"device_id", "schema_"}).encode()


class PredictionBatch(_Payload):
    """Predictions of one device in one message (schema 2): a backlog, several cameras or a high frame
    rate cost the broker and the cloud one message per batch instead of one per prediction."""

    schema_: Literal[2] = Field(BATCH_SCHEMA, alias="schema")
    device_id: str
    predictions: list[BatchedPrediction] = Field(
        min_length=1, max_length=BATCH_MAX, description=f"1 to {BATCH_MAX}, `seq` strictly increasing"
    )

    @model_validator(mode="after")
    def _seq_increases(self) -> PredictionBatch:
        _check_seqs(p.seq for p in self.predictions)
        return self


def _check_seqs(seqs: Iterable[int]) -> None:
    if any(later <= earlier for earlier, later in itertools.pairwise(seqs)):
        raise ValueError("seq must increase strictly within a batch")


def _plain_seqs(batch: dict[str, Any]) -> dict[str, Any]:
    _check_seqs(p["seq"] for p in batch["predictions"])
    return batch


def _plain(schema: Any, replacing: dict[Any, Callable[..., Any]]) -> Any:
    """A pydantic core schema with every model in it read into a dict of its fields instead: the same
    checks and errors, none of the objects. A model's validator must be in `replacing`, with its
    replacement for dicts (one silently dropped would let through what the model refuses)."""
    if isinstance(schema, list):
        return [_plain(item, replacing) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("type") == "model":
        fields = {
            name: {"type": "typed-dict-field", "schema": _plain(field["schema"], replacing),
                   "required": field["schema"]["type"] != "default",
                   **{key: field[key] for key in ("validation_alias", "serialization_alias") if key in field}}
            for name, field in schema["schema"]["fields"].items()
        }  # fmt: skip
        return {"type": "typed-dict", "fields": fields, "config": schema.get("config", {}), "extra_behavior": "ignore"}
    if str(schema.get("type")).startswith("function-") and schema.get("schema", {}).get("type") == "model":
        function = schema["function"]["function"]
        if function not in replacing:
            raise TypeError(f"{function.__qualname__} has no replacement for plain data")
        plain = {key: _plain(value, replacing) for key, value in schema.items() if key != "function"}
        return plain | {"function": {**schema["function"], "function": replacing[function]}}
    return {key: _plain(value, replacing) for key, value in schema.items()}


class _Validator(Protocol):
    def validate_json(self, input: bytes | str, /) -> Any: ...


_PLAIN = {PredictionBatch._seq_increases: _plain_seqs}
_PLAIN_BATCH = SchemaValidator(_plain(PredictionBatch.__pydantic_core_schema__, _PLAIN), {"title": "PredictionBatch"})
_PLAIN_PREDICTION = SchemaValidator(_plain(Prediction.__pydantic_core_schema__, _PLAIN), {"title": "Prediction"})


def _decode_either(payload: bytes | str, batch: _Validator, single: _Validator) -> Any:
    """A batch is tried first, as it is what devices send; a payload whose `schema` is not 2 is read
    as schema 1. (A discriminated union would parse every batch into Python objects once more before
    validating it.)"""
    try:
        return batch.validate_json(payload)
    except ValueError as exc:  # pydantic's ValidationError among them
        if not isinstance(exc, ValidationError) or not any(e["loc"] == ("schema",) for e in exc.errors()):
            raise _refused(PredictionBatch.__name__, exc) from exc
    try:
        return single.validate_json(payload)
    except ValueError as exc:
        raise _refused(Prediction.__name__, exc) from exc


def decode_predictions(payload: bytes | str) -> Prediction | PredictionBatch:
    """What the predictions topic carries, either schema; ProtocolError for anything else."""
    decoded: Prediction | PredictionBatch = _decode_either(
        payload, PredictionBatch.__pydantic_validator__, Prediction.__pydantic_validator__
    )
    return decoded


def predictions_data(payload: bytes | str) -> tuple[str, list[dict[str, Any]]]:
    """What `decode_predictions` reads, checked exactly as it checks it, as plain data: the device id
    and each prediction as a dict of its fields (BatchedPrediction's; nested models as dicts too). A
    service storing thousands a second skips building five objects per prediction."""
    decoded = _decode_either(payload, _PLAIN_BATCH, _PLAIN_PREDICTION)
    return decoded["device_id"], decoded.get("predictions", [decoded])


def _device_head(schema: int, device_id: str) -> bytes:
    return b'{"schema":%d,"device_id":%s,' % (schema, json.dumps(check_id(device_id)).encode())


def batch_payload(device_id: str, items: Sequence[bytes]) -> bytes:
    """A PredictionBatch from predictions already encoded by `Prediction.batched`, joined as they are:
    a device drains its backlog without parsing it again."""
    return _device_head(BATCH_SCHEMA, device_id) + b'"predictions":[' + b",".join(items) + b"]}"


def prediction_payload(device_id: str, item: bytes) -> bytes:
    """A Prediction (schema 1) from one encoded by `Prediction.batched`."""
    return _device_head(SCHEMA, device_id) + item[1:]


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

    @model_validator(mode="before")
    @classmethod
    def _finite_extras(cls, data: Any) -> Any:
        """An extra figure that is Infinity or NaN (Python's json reads them) is dropped: JSON has no such
        number, so it would be stored as null and read back as absent, never the same twice."""
        if not isinstance(data, dict):
            return data
        declared = {field.alias or name for name, field in cls.model_fields.items()} | set(cls.model_fields)
        return {
            key: value
            for key, value in data.items()
            if key in declared or not (isinstance(value, float) and not math.isfinite(value))
        }


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


class Availability(_Payload):
    """Whether the cloud's Home Assistant publisher is there (its last will says offline): every entity it
    made is unavailable while it is not."""

    state: Literal["online", "offline"]


class DeviceState(_Payload):
    """One device as Home Assistant shows it, published when it changes, at most once per
    --homeassistant-interval-s. Nulls are written, not left out: Home Assistant shows one as unknown."""

    state: str = Field(description="online or offline, as the device's last status said; unknown before its first")
    label: str | None = Field(description="the top-1 label of the device's newest prediction the cloud stored")
    fps: float | None = Field(ge=0, description="frames classified per second, as the device's telemetry last said")
    confidence: float | None = Field(
        ge=0, le=1, description="mean top-1 score of the device's predictions over the last --metrics-window-s"
    )

    def encode(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


class DiscoveryAvailability(_Payload):
    topic: str
    value_template: str = Field(description="reads `state` (online or offline) out of the topic's JSON")


class DiscoveryDevice(_Payload):
    identifiers: list[str] = Field(min_length=1)
    name: str
    manufacturer: str
    sw_version: str | None = Field(None, description="the model the device runs: name and version")


class DiscoveryOrigin(_Payload):
    name: str


class SensorDiscovery(_Payload):
    """A sensor's config in Home Assistant's MQTT discovery (its field names are Home Assistant's): one per
    sensor of each device, retained, so Home Assistant finds them again whenever it starts."""

    name: str
    unique_id: str
    state_topic: str
    value_template: str
    availability: list[DiscoveryAvailability] = Field(min_length=1)
    availability_mode: Literal["all", "any", "latest"] = "all"
    device: DiscoveryDevice
    origin: DiscoveryOrigin
    icon: str | None = None
    unit_of_measurement: str | None = None
    state_class: Literal["measurement"] | None = None


P = TypeVar("P", bound=_Payload)
Party = Literal["device", "cloud", "homeassistant"]


@dataclass(frozen=True)
class Kind(Generic[P]):
    """One kind of message. `pattern` is its topic below the prefix, where `{device_id}`, `{model_name}`
    (or Home Assistant's `{node_id}` and `{sensor}`) is one level, filled in per message and `+` in a
    subscription. The payload model
    parses the body, or for samples the user property `meta_property` beside a JPEG body. `sender`
    and `receiver` are what the broker's ACL grants: "cloud" is any client with the cloud's
    credentials (the service, its commands, an operator); "homeassistant", the user Home Assistant logs in
    as. `batch`, where set, is the model of a message that carries several payloads at once
    (`decode_predictions` reads either). `root` is what the pattern is below: our prefix, or Home
    Assistant's discovery prefix."""

    name: str
    pattern: str
    qos: Literal[0, 1]
    retain: bool
    payload: type[P] | None  # None: not defined yet
    sender: Party
    receiver: Party
    meta_property: str | None = None
    last_will: bool = False
    batch: type[_Payload] | None = None
    root: Literal["prefix", "discovery"] = "prefix"

    def decode(self, payload: bytes | str) -> P:
        """The payload parsed by this kind's model; ProtocolError for anything else."""
        if self.payload is None:
            raise ProtocolError(f"{self.name} messages have no payload model yet", "schema")
        return self.payload.decode(payload)


# The table:        name, topic below the prefix, QoS, retain, payload model, sender, receiver, [meta property]
PREDICTIONS = Kind(
    "predictions", "devices/{device_id}/predictions", 1, False, Prediction, "device", "cloud", batch=PredictionBatch
)
SAMPLES = Kind("samples", "devices/{device_id}/samples", 1, False, SampleMeta, "device", "cloud", SAMPLE_META_PROPERTY)
TELEMETRY = Kind("telemetry", "devices/{device_id}/telemetry", 0, False, Telemetry, "device", "cloud")
STATUS = Kind("status", "devices/{device_id}/status", 1, True, Status, "device", "cloud", last_will=True)
COMMANDS: Kind[_Payload] = Kind("commands", "devices/{device_id}/commands", 1, False, None, "cloud", "device")
MODELS = Kind("models", "models/{model_name}", 1, True, Announcement, "cloud", "device")
RETRAIN = Kind("retrain", "commands/retrain", 1, False, RetrainRequest, "cloud", "cloud")
HA_AVAILABILITY = Kind(
    "homeassistant_availability", "homeassistant/availability", 1, True, Availability, "cloud", "homeassistant",
    last_will=True,
)  # fmt: skip
HA_STATE = Kind(
    "homeassistant_state", "homeassistant/{device_id}/state", 1, True, DeviceState, "cloud", "homeassistant"
)
HA_DISCOVERY = Kind(
    "homeassistant_discovery", "sensor/{node_id}/{sensor}/config", 1, True, SensorDiscovery, "cloud", "homeassistant",
    root="discovery",
)  # fmt: skip
WIRE: tuple[Kind[Any], ...] = (
    PREDICTIONS, SAMPLES, TELEMETRY, STATUS, COMMANDS, MODELS, RETRAIN, HA_AVAILABILITY, HA_STATE, HA_DISCOVERY
)  # fmt: skip
_LEVELS = {"device_id": "device id", "model_name": "model name", "node_id": "node id", "sensor": "sensor"}
_NODE = re.compile(r"[A-Za-z0-9_-]{1,200}")  # what Home Assistant takes as a discovery topic's node and object ids
_NOT_A_NODE = re.compile(r"[^A-Za-z0-9_-]")


def _level(name: str, value: str) -> str:
    if name in ("node_id", "sensor"):
        if not _NODE.fullmatch(value):
            raise ProtocolError(f"invalid {_LEVELS[name]} {value!r}: use 1-200 of A-Z a-z 0-9 _ -", "bad_id")
        return value
    return check_id(value, _LEVELS[name])


class Topics:
    """The topics of WIRE's kinds under one prefix (and Home Assistant's under its discovery prefix)."""

    def __init__(self, prefix: str = DEFAULT_PREFIX, discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX) -> None:
        self.prefix = prefix.rstrip("/")
        self.discovery_prefix = discovery_prefix.rstrip("/")

    def root(self, kind: Kind[Any]) -> str:
        return self.prefix if kind.root == "prefix" else self.discovery_prefix

    def topic(self, kind: Kind[Any], **levels: str) -> str:
        """One message's topic; each level is checked (an id with a wildcard or a slash is refused)."""
        return f"{self.root(kind)}/" + kind.pattern.format(**{k: _level(k, v) for k, v in levels.items()})

    def filter(self, kind: Kind[Any]) -> str:
        """Every topic of a kind, for a subscription."""
        return f"{self.root(kind)}/" + kind.pattern.format(**dict.fromkeys(_LEVELS, "+"))

    def node(self, device_id: str) -> str:
        """A device's node id in Home Assistant (discovery topics, unique ids): the prefix and the device id,
        with what Home Assistant refuses there (dots, slashes) made underscores and, if any was, a hash of
        both, so that no two devices or fleets share one."""
        raw = f"{self.prefix}_{check_id(device_id)}"
        node = _NOT_A_NODE.sub("_", raw)
        return node if node == raw else f"{node}_{hashlib.sha256(raw.encode()).hexdigest()[:8]}"

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
