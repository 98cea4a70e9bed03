import json

import pytest

from common import protocol


def _prediction(**changes) -> dict:
    value = {
        "schema": 1,
        "device_id": "cam-1",
        "seq": 7,
        "ts": 1700000000.25,
        "model": {"name": "flowers", "version": "3"},
        "top_k": [{"label": "daisy", "score": 0.9}],
        "latency_ms": {"infer": 2.0, "total": 4.5},
    }
    value.update(changes)
    return value


def test_topics_follow_the_design() -> None:
    topics = protocol.Topics()
    assert topics.predictions("cam-1") == "edgeloop/devices/cam-1/predictions"
    assert topics.samples("cam-1") == "edgeloop/devices/cam-1/samples"
    assert topics.telemetry("cam-1") == "edgeloop/devices/cam-1/telemetry"
    assert topics.status("cam-1") == "edgeloop/devices/cam-1/status"
    assert topics.commands("cam-1") == "edgeloop/devices/cam-1/commands"
    assert topics.model("flowers") == "edgeloop/models/flowers"
    assert topics.retrain() == "edgeloop/commands/retrain"
    assert protocol.Topics("site/a").parse_device_topic("site/a/devices/cam-1/status") == ("cam-1", "status")


@pytest.mark.parametrize("device_id", ["", "a/b", "+", "#", ".hidden", "x" * 65, "a b", "cam-1\n"])
def test_ids_that_would_break_topics_are_refused(device_id: str) -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.Topics().predictions(device_id)


def test_prediction_round_trips_with_the_designed_keys() -> None:
    encoded = protocol.Prediction.decode(json.dumps(_prediction())).encode()
    assert json.loads(encoded) == _prediction()


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"[]",
        json.dumps(_prediction(seq=-1)).encode(),
        json.dumps(_prediction(top_k=[])).encode(),
        json.dumps(_prediction(top_k=[{"label": "a", "score": 1.5}])).encode(),
        json.dumps(_prediction(seq=10**23)).encode(),
        json.dumps(_prediction(ts=float("nan"))).encode(),
        json.dumps({k: v for k, v in _prediction().items() if k != "device_id"}).encode(),
    ],
)
def test_malformed_predictions_are_protocol_errors(payload: bytes) -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.Prediction.decode(payload)


def test_announcement_needs_a_sha256() -> None:
    good = {"name": "f", "version": "2", "url": "http://x/f/2.tar.gz", "sha256": "a" * 64, "created": "now"}
    assert protocol.Announcement.decode(json.dumps(good)).version == "2"
    with pytest.raises(protocol.ProtocolError):
        protocol.Announcement.decode(json.dumps({**good, "sha256": "abc"}))
