"""Turning one MQTT message into something to store, or into a rejection with its reason. Nothing
here trusts the device: ids are checked, sizes are bounded, JPEGs are checked before they count (the
size their header declares first, then a decode at an eighth of it)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cloud.options import DEFAULT_SAMPLE_MAX_SIDE
from common import images, protocol

MAX_JSON_BYTES = 64 * 1024  # but predictions: protocol.BATCH_MAX_BYTES


class Rejected(protocol.ProtocolError):
    """A message refused, with the reason it is counted under: the protocol's own (bad_json, schema,
    bad_topic) and the aggregator's (oversized, device_mismatch, bad_image, image_too_large, retained, internal,
    unstorable, and the quotas' rate_limited, over_quota, overloaded)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason, reason)


@dataclass(frozen=True)
class Sample:
    id: str
    jpeg: bytes
    meta: protocol.SampleMeta


@dataclass(frozen=True)
class DeviceUpdate:
    device_id: str
    kind: str  # "status" or "telemetry"
    values: dict[str, Any]
    cameras: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # telemetry's figures by camera


def _decode_json(payload: bytes, kind: protocol.Kind[Any]) -> Any:
    if len(payload) > MAX_JSON_BYTES:
        raise Rejected("oversized", f"{len(payload)} bytes")
    try:
        return kind.decode(payload)
    except protocol.ProtocolError as exc:
        raise Rejected(exc.reason, str(exc)) from exc


def predictions(device_id: str, payload: bytes) -> list[dict[str, Any]]:
    """One prediction (schema 1) or a batch's (schema 2), as plain data (`protocol.predictions_data`):
    a batch is taken or rejected whole."""
    if len(payload) > protocol.BATCH_MAX_BYTES:
        raise Rejected("oversized", f"{len(payload)} bytes")
    try:
        sender, parsed = protocol.predictions_data(payload)
    except protocol.ProtocolError as exc:
        raise Rejected(exc.reason, str(exc)) from exc
    if sender != device_id:
        raise Rejected("device_mismatch", f"payload says {sender!r} on {device_id!r}'s topic")
    return parsed


def sample(device_id: str, payload: bytes, properties: Any, max_side: int = DEFAULT_SAMPLE_MAX_SIDE) -> Sample:
    """A sample whose payload's size the caller has bounded (the quotas do)."""
    user = dict(getattr(properties, "UserProperty", None) or [])
    if protocol.SAMPLES.meta_property not in user:
        raise Rejected("schema", "sample without its meta property")
    meta = _decode_json(user[protocol.SAMPLES.meta_property].encode(), protocol.SAMPLES)
    if meta.device_id != device_id:
        raise Rejected("device_mismatch")
    if not payload.startswith(b"\xff\xd8"):
        raise Rejected("bad_image", "not a JPEG")
    try:
        images.check(payload, max_side)
    except images.ImageTooLarge as exc:
        raise Rejected("image_too_large", str(exc)) from exc
    except images.ImageError as exc:
        raise Rejected("bad_image", str(exc)) from exc
    return Sample(hashlib.sha256(payload).hexdigest(), bytes(payload), meta)


def device_update(device_id: str, kind: str, payload: bytes) -> DeviceUpdate:
    if kind == protocol.STATUS.name:
        status = _decode_json(payload, protocol.STATUS)
        values = {
            "state": status.state,
            "message": status.message,
            "backend": status.backend,
            "device_group": status.group,
        }
        if status.model:
            values |= {"model_name": status.model.name, "model_version": status.model.version}
        return DeviceUpdate(device_id, kind, values)
    telemetry = _decode_json(payload, protocol.TELEMETRY)
    cameras = telemetry.cameras or {}
    for name in cameras:
        protocol.check_id(name, "camera name")
    values = {"fps": telemetry.fps, "telemetry": telemetry.encode().decode()}
    # A device with one camera names none on the wire: its figures are the device's, not a camera's.
    return DeviceUpdate(device_id, kind, values, cameras if len(cameras) > 1 else {})
