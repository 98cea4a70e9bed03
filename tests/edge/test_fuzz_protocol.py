"""Hostile payloads and topics against the wire protocol: whatever arrives, a parser returns a valid
message or raises ProtocolError, which a long-running service counts before carrying on."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from common import protocol
from tests.support.fuzz import FINITE, FUZZ, IDS, JSON_VALUES, mutations, objects_like

# What edgeloop parses: Home Assistant's kinds are only ever written, by the cloud, and read by Home Assistant.
PAYLOADS = [kind.payload for kind in protocol.WIRE if kind.payload is not None and kind.receiver != "homeassistant"]

MODELS = st.builds(protocol.ModelRef, name=st.text(), version=st.text())
TOP_K = st.lists(st.builds(protocol.Score, label=st.text(), score=st.floats(0, 1)), min_size=1, max_size=5)
COMMON = {"device_id": IDS, "seq": st.integers(0, 2**63 - 1), "ts": FINITE, "model": MODELS, "top_k": TOP_K}
PREDICTIONS = st.builds(
    protocol.Prediction,
    **COMMON,
    latency_ms=st.builds(protocol.Latency, infer=st.floats(0, 1e9), total=st.floats(0, 1e9)),
)
ITEMS = st.builds(
    protocol.BatchedPrediction,
    **{k: v for k, v in COMMON.items() if k != "device_id"},
    latency_ms=st.builds(protocol.Latency, infer=st.floats(0, 1e9), total=st.floats(0, 1e9)),
)
BATCHES = st.builds(
    protocol.PredictionBatch,
    device_id=IDS,
    predictions=st.lists(ITEMS, min_size=1, max_size=8, unique_by=lambda p: p.seq).map(
        lambda items: sorted(items, key=lambda p: p.seq)
    ),
)
SAMPLE_METAS = st.builds(protocol.SampleMeta, **COMMON, reason=st.sampled_from(["low_confidence", "random"]))
STATUSES = st.builds(
    protocol.Status,
    state=st.sampled_from(["online", "offline"]),
    ts=FINITE,
    model=st.none() | MODELS,
    backend=st.none() | st.text(),
    message=st.none() | st.text(),
    group=st.none() | IDS,
)
VALID = {protocol.Prediction: PREDICTIONS, protocol.SampleMeta: SAMPLE_METAS, protocol.Status: STATUSES}


def _decodes_or_refuses(kind: type[protocol._Payload], payload: bytes | str) -> None:
    try:
        decoded = kind.decode(payload)
    except protocol.ProtocolError:
        return
    assert isinstance(decoded, kind)
    encoded = decoded.encode()  # open-ended fields (metrics) may hold Infinity, which encodes as null
    assert kind.decode(encoded).encode() == encoded


@pytest.mark.parametrize("kind", VALID, ids=lambda kind: kind.__name__)
@FUZZ
@given(data=st.data())
def test_valid_messages_round_trip(kind: type[protocol._Payload], data: st.DataObject) -> None:
    message = data.draw(VALID[kind])
    assert kind.decode(message.encode()) == message
    assert kind.decode(message.encode().decode()) == message


@pytest.mark.parametrize("kind", PAYLOADS, ids=lambda kind: kind.__name__)
@FUZZ
@given(payload=st.binary(max_size=300) | st.text(max_size=300))
@example(payload=b"[" * 100_000)
@example(payload=b'{"model": "' + b"\xff" * 10 + b'"}')
@example(payload="\ud800")
def test_any_bytes_decode_or_raise_protocol_error(kind: type[protocol._Payload], payload: bytes | str) -> None:
    _decodes_or_refuses(kind, payload)


@pytest.mark.parametrize("kind", PAYLOADS, ids=lambda kind: kind.__name__)
@FUZZ
@given(data=st.data())
def test_objects_with_the_expected_keys_decode_or_raise_protocol_error(
    kind: type[protocol._Payload], data: st.DataObject
) -> None:
    keys = [field.alias or name for name, field in kind.model_fields.items()]
    _decodes_or_refuses(kind, json.dumps(data.draw(objects_like(keys))))


@FUZZ
@given(data=st.data())
def test_mutated_predictions_decode_or_raise_protocol_error(data: st.DataObject) -> None:
    _decodes_or_refuses(protocol.Prediction, data.draw(mutations(data.draw(PREDICTIONS).encode())))


def _read(decode, payload: bytes):
    """What `decode` makes of the payload: its result, or the reason it refuses it."""
    try:
        return decode(payload)
    except protocol.ProtocolError as exc:
        return exc.reason


@settings(FUZZ, max_examples=100)
@given(data=st.data())
def test_batches_packed_from_items_are_the_batch_or_refused_whole_when_mangled(data: st.DataObject) -> None:
    batch = data.draw(BATCHES)
    payload = protocol.batch_payload(batch.device_id, [p.model_dump_json().encode() for p in batch.predictions])
    assert protocol.decode_predictions(payload) == batch
    mangled = data.draw(mutations(payload))
    decoded, plain = _read(protocol.decode_predictions, mangled), _read(protocol.predictions_data, mangled)
    if isinstance(decoded, str):  # refused, and as plain data for the same reason
        assert plain == decoded
        return
    items = decoded.predictions if isinstance(decoded, protocol.PredictionBatch) else [decoded]
    assert plain == (decoded.device_id, [p.model_dump() for p in items])
    if isinstance(decoded, protocol.PredictionBatch):
        seqs = [p.seq for p in decoded.predictions]
        assert 1 <= len(seqs) <= protocol.BATCH_MAX
        assert seqs == sorted(set(seqs))


@FUZZ
@given(value=st.text(max_size=80) | IDS)
@example(value="../../etc")
@example(value="cam-1\n")
def test_check_id_accepts_only_safe_ids(value: str) -> None:
    try:
        assert protocol.check_id(value) == value
    except protocol.ProtocolError:
        return
    assert 1 <= len(value) <= 64
    assert not value.startswith(".")
    assert not set(value) & set("/+#$\\\n\x00 ")


LEVELS = st.sampled_from(["edgeloop", "devices", "..", ".", "", "+", "#", "predictions", "cam-1"]) | st.text(max_size=8)


@FUZZ
@given(levels=st.lists(LEVELS, max_size=6), device_id=st.text(max_size=12))
@example(levels=[], device_id="../../etc")
def test_device_topics_parse_back_to_the_topic_or_raise(levels: list[str], device_id: str) -> None:
    """The id a topic yields is a safe one, and names the very topic it came from."""
    topics = protocol.Topics()
    for topic in ("/".join(levels), f"edgeloop/devices/{device_id}/predictions"):
        try:
            parsed_id, kind = topics.parse_device_topic(topic)
        except protocol.ProtocolError:
            continue
        assert protocol.check_id(parsed_id) == parsed_id
        assert topics.device(parsed_id, kind) == topic


@FUZZ
@given(metrics=st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4), groups=st.none() | st.lists(st.text()))
def test_announcements_with_any_metrics_decode_or_raise(metrics: dict, groups: list[str] | None) -> None:
    body = {"name": "m", "version": "1", "url": "http://x/m/1.tar.gz", "sha256": "a" * 64, "created": "now",
            "serial": 1, "expires": "2030-01-01T00:00:00Z"}  # fmt: skip
    try:
        payload = json.dumps({**body, "metrics": metrics, "groups": groups}, allow_nan=True)
    except ValueError:
        return
    _decodes_or_refuses(protocol.Announcement, payload)
