"""The device's configuration: one typed definition behind `python -m edge run`'s flags and its
YAML file. Secrets (the broker password) come from the environment, never from either."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from common import protocol
from common.options import REPEATABLE, Options
from edge.downloads import origin

# A frame's confidence (0-1) by each measure, under which it goes to samples unless --sample-threshold says.
UNCERTAINTY_THRESHOLDS = {"margin": 0.2, "entropy": 0.5, "top1": 0.5}
# `NAME=URI`: a camera's name is an id (no `:` or `/`), so `rtsp://h/s?a=b` is a URI, not a name.
NAMED_SOURCE = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.-]{0,63})=(.+)")


def camera(source: str, index: int) -> tuple[str, str]:
    """(name, URI) of one --source: `NAME=URI`, else the camera's index as its name."""
    match = NAMED_SOURCE.fullmatch(source)
    return (match.group(1), match.group(2)) if match else (str(index), source)


class EdgeConfig(Options):
    source: list[str] = Field(
        min_length=1,
        json_schema_extra={REPEATABLE: True},
        description="a camera: v4l2:///dev/video0, 0, csi://0, rtsp://…, http://… (MJPEG), a file or folder; "
        "NAME=URI names it (else its index); repeat the flag for several cameras (YAML: `source` or `sources`, "
        "one or a list)",
    )
    camera_wait_ms: float = Field(
        5,
        ge=0,
        le=1000,
        description="with several cameras: how long inference waits, once a frame is ready, for the other live "
        "cameras' frames to classify them in one batch",
    )
    model: Path = Field(description="model bundle directory")
    broker: str = Field(
        "mqtt://localhost:1883", description="mqtt://[user@]host[:port] or mqtts://…; password: EDGELOOP_MQTT_PASSWORD"
    )
    device_id: str = Field(description="this device's id in topics")
    group: str | None = Field(None, description="rollout group: canary announcements for this group apply here")
    backend: str = Field("auto", description="tflite, tf, tensorrt or auto")
    top_k: int = Field(3, ge=1, description="labels per prediction")
    prefix: str = Field(protocol.DEFAULT_PREFIX, description="topic prefix")
    publish: Literal["every", "change", "interval"] = Field(
        "every", description="every frame, on label change, or at most every --interval-ms"
    )
    interval_ms: int = Field(1000, ge=1, description="for --publish interval")
    loop: bool = Field(False, description="replay a file or folder source forever")
    max_frames: int = Field(0, ge=0, description="stop after this many frames (0: never)")
    state_dir: Path = Field(Path("~/.local/state/edgeloop").expanduser(), description="outbox and sequence numbers")
    outbox_max_messages: int = Field(100_000, ge=1, description="messages kept while the broker is unreachable")
    outbox_max_age_s: float = Field(7 * 86400, gt=0, description="oldest message kept while unreachable")
    batch_max_predictions: int = Field(
        100, ge=1, le=protocol.BATCH_MAX, description="predictions packed into one MQTT message (1: each alone)"
    )
    batch_max_delay_ms: float = Field(
        200, ge=0, description="longest a prediction waits for others to fill its message (a full one never waits)"
    )
    sample_uncertainty: Literal["margin", "entropy", "top1"] = Field(
        "margin",
        description="a frame's confidence: top-1 minus top-2 score, 1 - entropy/log(labels), or the top-1 score",
    )
    sample_threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="frames whose confidence is below go to samples (1: every frame); default by --sample-uncertainty: "
        + ", ".join(f"{value} {name}" for name, value in UNCERTAINTY_THRESHOLDS.items()),
    )
    sample_random_share: float = Field(
        0.001, ge=0, le=1, description="share of other frames sent as samples while the predicted labels match training"
    )
    sample_random_max: float = Field(
        0.05, ge=0, le=1, description="the random share once the predicted labels drift --sample-drift-ceiling or more"
    )
    sample_drift_frames: int = Field(500, ge=1, description="frames the moving histogram of predicted labels spans")
    sample_drift_floor: float = Field(
        0.1, ge=0, le=1, description="distance (total variation) of that histogram from training where the share grows"
    )
    sample_drift_ceiling: float = Field(
        0.4, ge=0, le=1, description="distance at which the random share reaches --sample-random-max"
    )
    sample_duplicate_distance: float = Field(
        0.04,
        ge=0,
        le=1,
        description="a frame nearer a recent sample (mean difference of 16x16 thumbnails, 0-1) is not sent (0: off)",
    )
    sample_duplicate_memory: int = Field(48, ge=1, description="recent samples a frame is compared with")
    samples_per_minute: int = Field(30, ge=0, description="samples rate limit")
    telemetry_interval_s: float = Field(10, gt=0, description="seconds between telemetry messages")
    preview_port: int | None = Field(None, ge=0, le=65535, description="serve an MJPEG preview with labels here")
    preview_host: str = Field(
        "127.0.0.1", description="address of the preview, which shows the camera to anyone who reaches it"
    )
    health_port: int | None = Field(
        None, ge=0, le=65535, description="serve the health check (frame age, broker, outbox; no pictures) here"
    )
    health_host: str = Field("0.0.0.0", description="address of the health check: probes reach the pod's")
    health_stall_s: float = Field(60, gt=0, description="the health check fails once no frame came for this long")
    keepalive_s: int = Field(30, ge=1, description="MQTT keepalive; the broker declares the device offline after 1.5x")
    ca_file: Path | None = Field(None, description="CA certificate for mqtts:// (default: the system's)")
    cert_file: Path | None = Field(
        None, description="this device's client certificate and key (PEM, one file) for a broker that asks for one"
    )
    trusted_key: Path | None = Field(
        None,
        description="the registry's Ed25519 public key (PEM; several in one file while the key is rotated): model "
        "announcements must be signed by it. Required unless --allow-unsigned-models",
    )
    allow_unsigned_models: bool = Field(
        False,
        description="INSECURE: act on unsigned model announcements (anyone who can publish on the broker runs code "
        "here); needs --model-origin",
    )
    model_origin: str | None = Field(
        None,
        description="scheme://host[:port] the device downloads bundles from; a bundle elsewhere is refused "
        "(default: wherever the signed announcement says)",
    )

    @model_validator(mode="before")
    @classmethod
    def _sources_key(cls, data: Any) -> Any:
        """YAML's `sources:` list is `source`; a --source flag (merged in as `source`) replaces it."""
        if isinstance(data, dict) and "sources" in data:
            data = dict(data)
            sources = data.pop("sources")
            data.setdefault("source", sources)
        return data

    @field_validator("source", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("source")
    @classmethod
    def _unique_names(cls, value: list[str]) -> list[str]:
        names = [camera(source, i)[0] for i, source in enumerate(value)]
        if twice := sorted({name for name in names if names.count(name) > 1}):
            raise ValueError(f"camera names must differ: {', '.join(twice)} given twice (NAME=URI, or the index)")
        return value

    @property
    def cameras(self) -> list[tuple[str, str]]:
        """(name, URI) of each camera, in the order given."""
        return [camera(source, i) for i, source in enumerate(self.source)]

    @field_validator("device_id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        return protocol.check_id(value)

    @field_validator("group")
    @classmethod
    def _valid_group(cls, value: str | None) -> str | None:
        return None if value is None else protocol.check_id(value, "group")

    @field_validator("model_origin")
    @classmethod
    def _valid_origin(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.path.strip("/") or parts.query or parts.fragment or parts.username:
            raise ValueError(f"{value!r}: only scheme://host[:port], no path, query or user")
        return origin(value)

    @model_validator(mode="after")
    def _drift_range(self) -> EdgeConfig:
        if self.sample_drift_ceiling <= self.sample_drift_floor:
            raise ValueError("sample-drift-ceiling must be above sample-drift-floor")
        return self
