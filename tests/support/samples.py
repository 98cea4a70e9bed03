"""Samples as a device sends them (the MQTT v5 properties) and as the aggregator files them (the JPEG
and its row), and the dataset folders labels file them into."""

import hashlib
import time
from pathlib import Path

import cv2
import numpy as np
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud.aggregator.parse import Sample
from cloud.aggregator.writer import Batch, write
from common import protocol


def sample_properties(meta: protocol.SampleMeta) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = "image/jpeg"
    props.UserProperty = [(protocol.SAMPLE_META_PROPERTY, meta.model_dump_json())]
    return props


def send_sample(fleet, topics: protocol.Topics, device_id: str, seq: int, camera: str, label: str, score: float,
                reason: str, grey: int) -> None:  # fmt: skip
    """One sample of a camera as a device sends it (a flat grey JPEG, model flowers 1), waited for until published."""
    _, jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), grey, np.uint8))
    meta = protocol.SampleMeta(
        device_id=device_id, seq=seq, ts=time.time(), camera=camera, reason=reason,
        model=protocol.ModelRef(name="flowers", version="1"), top_k=[protocol.Score(label=label, score=score)],
    )  # fmt: skip
    fleet.send(topics.samples(device_id), jpeg.tobytes(), properties=sample_properties(meta)).wait_for_publish(10)


def store_samples(db, data_dir: Path, n: int, model: str = "flowers", seed: int = 0) -> list[Sample]:
    """Samples as the aggregator files them: a distinct JPEG each, its row in the store."""
    rng = np.random.default_rng(seed)
    jpegs = [cv2.imencode(".jpg", rng.integers(0, 256, (32, 40, 3), np.uint8))[1].tobytes() for _ in range(n)]
    samples = [_sample(jpeg, seq, model) for seq, jpeg in enumerate(jpegs, start=1)]
    write(db, data_dir, Batch(samples=samples))
    return samples


def store_pictures(db, data_dir: Path, jpegs: list[bytes], model: str = "flowers") -> list[Sample]:
    """JPEGs filed as samples one after the other, each in its own batch: the last one is the newest."""
    samples = [_sample(jpeg, seq, model) for seq, jpeg in enumerate(jpegs, start=1)]
    for sample in samples:
        write(db, data_dir, Batch(samples=[sample]))
    return samples


def _sample(jpeg: bytes, seq: int, model: str) -> Sample:
    meta = protocol.SampleMeta(
        device_id="cam-1", seq=seq, ts=time.time(), model=protocol.ModelRef(name=model, version="3"),
        top_k=[protocol.Score(label="daisy", score=0.25 + seq / 100)], reason="low_confidence",
    )  # fmt: skip
    return Sample(hashlib.sha256(jpeg).hexdigest(), jpeg, meta)


def dataset_files(data_dir: Path) -> list[str]:
    return sorted(p.relative_to(data_dir).as_posix() for p in (data_dir / "datasets").rglob("*") if p.is_file())
