"""Hostile messages against the aggregator's parsers: each returns what to store or raises Rejected
with a reason the metrics know, never anything else, so the ingest loop counts it and carries on."""

from __future__ import annotations

import hashlib
import json
import time

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud.aggregator import parse
from common import protocol
from tests.support.data import encode_jpeg, synthetic_image
from tests.support.fleet import batch
from tests.support.fuzz import FUZZ, JSON_VALUES, jpeg_claiming, mutations, objects_like
from tests.support.samples import sample_properties

REASONS = {"oversized", "bad_json", "schema", "device_mismatch", "bad_image", "image_too_large"}
JPEG = encode_jpeg(synthetic_image("blue", np.random.default_rng(2), size=48))
META = protocol.SampleMeta(
    device_id="cam-1",
    seq=3,
    ts=1.5,
    model=protocol.ModelRef(name="flowers", version="1"),
    top_k=[protocol.Score(label="daisy", score=0.3)],
    reason="low_confidence",
)
BATCH = batch("cam-1", [7, 8, 9])
PREDICTION = protocol.Prediction(
    device_id="cam-1", seq=7, ts=1.25, model=META.model, top_k=META.top_k, latency_ms=protocol.Latency(infer=2, total=4)
).encode()


def _parsed_or_rejected(parse_one, *args):
    try:
        return parse_one(*args)
    except parse.Rejected as exc:
        rejected = exc
    assert rejected.reason in REASONS, rejected
    return None


@FUZZ
@given(
    payload=st.binary(max_size=300)
    | mutations(PREDICTION)
    | objects_like(list(json.loads(PREDICTION))).map(lambda value: json.dumps(value).encode())
)
@example(payload=b"[" * 100_000)
@example(payload=b" " * (protocol.BATCH_MAX_BYTES + 1))
def test_predictions_parse_or_are_rejected(payload: bytes) -> None:
    parsed = _parsed_or_rejected(parse.predictions, "cam-1", payload)
    assert parsed is None or parsed == [protocol.Prediction.decode(payload).model_dump()]


@settings(FUZZ, max_examples=100)
@given(payload=mutations(BATCH) | objects_like(list(json.loads(BATCH))).map(lambda value: json.dumps(value).encode()))
@example(payload=BATCH.replace(b'"seq":8', b'"seq":7'))
@example(payload=batch("someone-else", [1, 2]))
def test_batches_parse_whole_or_are_rejected_whole(payload: bytes) -> None:
    parsed = _parsed_or_rejected(parse.predictions, "cam-1", payload)
    if parsed is not None:
        seqs = [p["seq"] for p in parsed]
        assert 1 <= len(seqs) <= protocol.BATCH_MAX
        assert seqs == sorted(set(seqs))


def _properties(user: list[tuple[str, str]]) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    if user:
        props.UserProperty = user
    return props


USER_PROPERTIES = st.lists(
    st.tuples(st.sampled_from([protocol.SAMPLE_META_PROPERTY, "other"]), st.text(max_size=40)), max_size=3
) | mutations(META.encode()).map(lambda meta: [(protocol.SAMPLE_META_PROPERTY, meta.decode("utf-8", "replace"))])


@FUZZ
@given(payload=mutations(JPEG) | st.binary(max_size=200), user=USER_PROPERTIES)
@example(payload=JPEG[: len(JPEG) // 2], user=[(protocol.SAMPLE_META_PROPERTY, META.model_dump_json())])
def test_samples_parse_or_are_rejected(payload: bytes, user: list[tuple[str, str]]) -> None:
    for properties in (_properties(user), None):
        sample = _parsed_or_rejected(parse.sample, "cam-1", payload, properties)
        if sample is not None:
            assert sample.id == hashlib.sha256(payload).hexdigest()
            assert sample.meta.device_id == "cam-1"


@FUZZ
@given(payload=mutations(JPEG))
def test_corrupt_jpegs_are_bad_images_with_their_meta_intact(payload: bytes) -> None:
    """Only the picture is hostile here: a rejection can only be about the picture."""
    reason = None
    try:
        assert parse.sample("cam-1", payload, sample_properties(META)).jpeg == payload
    except parse.Rejected as rejected:
        reason = rejected.reason
    assert reason in (None, "bad_image", "image_too_large")  # a flipped bit in the header may claim a huge frame


@pytest.mark.parametrize("cut", [2, 100, len(JPEG) // 2, len(JPEG) - 2])
def test_truncated_jpegs_are_bad_images(cut: int) -> None:
    with pytest.raises(parse.Rejected) as rejected:
        parse.sample("cam-1", JPEG[:cut], sample_properties(META))
    assert rejected.value.reason == "bad_image"


def test_a_jpeg_header_claiming_a_huge_frame_is_refused_in_no_time() -> None:
    start = time.monotonic()
    with pytest.raises(parse.Rejected, match="16000x16000") as rejected:
        parse.sample("cam-1", jpeg_claiming(JPEG, 16000, 16000), sample_properties(META))
    assert rejected.value.reason == "image_too_large"
    assert time.monotonic() - start < 0.5


@FUZZ
@given(
    kind=st.sampled_from(["status", "telemetry"]),
    payload=st.binary(max_size=300)
    | JSON_VALUES.map(lambda value: json.dumps(value).encode())
    | objects_like(["state", "ts", "model", "backend", "message", "group", "fps"]).map(
        lambda value: json.dumps(value).encode()
    ),
)
@example(kind="telemetry", payload=b'{"fps": 1e999}')
@example(kind="telemetry", payload=b'{"fps": ' + b"9" * 5000 + b"}")
@example(kind="telemetry", payload=b"[" * 100_000)
def test_device_updates_parse_or_are_rejected(kind: str, payload: bytes) -> None:
    update = _parsed_or_rejected(parse.device_update, "cam-1", kind, payload)
    if update is not None and kind == "telemetry":
        fps = update.values["fps"]
        assert fps is None or np.isfinite(fps)
        json.loads(update.values["telemetry"])
