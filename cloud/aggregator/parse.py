"""Turning one MQTT message into something to store, or into a rejection with its reason. Nothing
here trusts the device: ids are checked, sizes are bounded, JPEGs are decoded before they count."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from common import images, protocol

MAX_JSON_BYTES = 64 * 1024
MAX_SAMPLE_BYTES = 8 * 1024 * 1024
MAX_SAMPLE_PIXELS = 8192 * 8192  # a camera frame; a few KB of JPEG header may claim far more


class Rejected(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


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


def _decode_json(payload: bytes, model: type) -> Any:
    if len(payload) > MAX_JSON_BYTES:
        raise Rejected("oversized", f"{len(payload)} bytes")
    try:
        return model.decode(payload)
    except protocol.ProtocolError as exc:
        raise Rejected("bad_json" if "json_invalid" in str(exc) or "Invalid JSON" in str(exc) else "schema") from exc


def prediction(device_id: str, payload: bytes) -> protocol.Prediction:
    parsed = _decode_json(payload, protocol.Prediction)
    if parsed.device_id != device_id:
        raise Rejected("device_mismatch", f"payload says {parsed.device_id!r} on {device_id!r}'s topic")
    return parsed


def sample(device_id: str, payload: bytes, properties: Any) -> Sample:
    if len(payload) > MAX_SAMPLE_BYTES:
        raise Rejected("oversized", f"{len(payload)} bytes")
    user = dict(getattr(properties, "UserProperty", None) or [])
    if protocol.SAMPLE_META_PROPERTY not in user:
        raise Rejected("schema", "sample without its meta property")
    meta = _decode_json(user[protocol.SAMPLE_META_PROPERTY].encode(), protocol.SampleMeta)
    if meta.device_id != device_id:
        raise Rejected("device_mismatch")
    if not payload.startswith(b"\xff\xd8"):
        raise Rejected("bad_image", "not a JPEG")
    try:
        images.decode_rgb(payload, MAX_SAMPLE_PIXELS)
    except images.ImageError as exc:
        raise Rejected("bad_image", str(exc)) from exc
    return Sample(hashlib.sha256(payload).hexdigest(), bytes(payload), meta)


def device_update(device_id: str, kind: str, payload: bytes) -> DeviceUpdate:
    if kind == "status":
        status = _decode_json(payload, protocol.Status)
        values = {
            "state": status.state,
            "message": status.message,
            "backend": status.backend,
            "device_group": status.group,
        }
        if status.model:
            values |= {"model_name": status.model.name, "model_version": status.model.version}
        return DeviceUpdate(device_id, kind, values)
    if len(payload) > MAX_JSON_BYTES:
        raise Rejected("oversized")
    try:
        telemetry = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise Rejected("bad_json") from exc
    if not isinstance(telemetry, dict):
        raise Rejected("schema", "telemetry is not an object")
    fps = telemetry.get("fps")
    fps = float(fps) if isinstance(fps, float) or (isinstance(fps, int) and abs(fps) < 10**9) else None
    values = {"fps": fps if fps is not None and math.isfinite(fps) else None, "telemetry": json.dumps(telemetry)}
    return DeviceUpdate(device_id, kind, values)
