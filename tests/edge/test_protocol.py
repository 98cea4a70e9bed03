import json
import re

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


def _batch(seqs, **changes) -> dict:
    items = [{k: v for k, v in _prediction(seq=seq).items() if k not in ("schema", "device_id")} for seq in seqs]
    return {"schema": 2, "device_id": "cam-1", "predictions": items} | changes


def test_a_batch_is_its_predictions_with_the_designed_keys() -> None:
    singles = [protocol.Prediction.decode(json.dumps(_prediction(seq=seq))) for seq in (7, 8, 12)]
    payload = protocol.batch_payload("cam-1", [p.batched() for p in singles])
    assert json.loads(payload) == _batch([7, 8, 12])
    batch = protocol.decode_predictions(payload)
    assert isinstance(batch, protocol.PredictionBatch)
    assert [protocol.Prediction(device_id="cam-1", **dict(p)) for p in batch.predictions] == singles
    assert protocol.decode_predictions(protocol.prediction_payload("cam-1", singles[0].batched())) == singles[0]
    assert protocol.decode_predictions(json.dumps(_prediction())) == singles[0].model_copy(update={"seq": 7})


@pytest.mark.parametrize(
    "batch",
    [
        _batch([]),
        _batch(range(1, protocol.BATCH_MAX + 2)),
        _batch([3, 3]),
        _batch([4, 3]),
        _batch([1, 2], schema=3),
        _batch([1, 2], predictions={"seq": 1}),
        {k: v for k, v in _batch([1]).items() if k != "device_id"},
        _batch([1]) | {"predictions": [_batch([1])["predictions"][0] | {"top_k": []}]},
        _prediction(schema=2),
    ],
    ids=[
        "empty",
        "too-many",
        "seq-repeated",
        "seq-back",
        "schema-3",
        "not-a-list",
        "no-device",
        "bad-item",
        "single-as-schema-2",
    ],
)
def test_malformed_batches_are_refused_whole(batch: dict) -> None:
    with pytest.raises(protocol.ProtocolError) as refused:
        protocol.decode_predictions(json.dumps(batch))
    assert refused.value.reason == "schema"


def test_announcement_needs_a_sha256() -> None:
    good = {"name": "f", "version": "2", "url": "http://x/f/2.tar.gz", "sha256": "a" * 64, "created": "now",
            "serial": 1, "expires": "2030-01-01T00:00:00Z"}  # fmt: skip
    assert protocol.Announcement.decode(json.dumps(good)).version == "2"
    with pytest.raises(protocol.ProtocolError):
        protocol.Announcement.decode(json.dumps({**good, "sha256": "abc"}))


def test_the_wire_table_says_how_each_kind_travels() -> None:
    table = {kind.name: (kind.sender, kind.receiver, kind.qos, kind.retain) for kind in protocol.WIRE}
    assert table == {
        "predictions": ("device", "cloud", 1, False),
        "samples": ("device", "cloud", 1, False),
        "telemetry": ("device", "cloud", 0, False),
        "status": ("device", "cloud", 1, True),
        "commands": ("cloud", "device", 1, False),
        "models": ("cloud", "device", 1, True),
        "retrain": ("cloud", "cloud", 1, False),
        "homeassistant_availability": ("cloud", "homeassistant", 1, True),
        "homeassistant_state": ("cloud", "homeassistant", 1, True),
        "homeassistant_discovery": ("cloud", "homeassistant", 1, True),
    }
    assert [kind.name for kind in protocol.WIRE if kind.last_will] == ["status", "homeassistant_availability"]
    assert protocol.SAMPLES.meta_property == "meta"
    topics = protocol.Topics()
    assert topics.filter(protocol.PREDICTIONS) == "edgeloop/devices/+/predictions"
    assert topics.filter(protocol.MODELS) == "edgeloop/models/+"
    assert topics.topic(protocol.COMMANDS, device_id="cam-1") == topics.commands("cam-1")
    assert topics.filter(protocol.HA_DISCOVERY) == "homeassistant/sensor/+/+/config"
    assert topics.filter(protocol.HA_STATE) == "edgeloop/homeassistant/+/state"


def test_home_assistant_node_ids_are_what_it_takes_and_one_per_device() -> None:
    """Home Assistant takes [a-zA-Z0-9_-] in a discovery topic's node id; device ids and prefixes may hold more."""
    nodes = [protocol.Topics(prefix).node(device) for prefix in ("edgeloop", "site/a") for device in
             ("cam-1", "cam.1", "cam_1", "a" * 64)]  # fmt: skip
    assert nodes[0] == "edgeloop_cam-1"
    assert len(set(nodes)) == len(nodes)
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]+", node) for node in nodes)
    with pytest.raises(protocol.ProtocolError):
        protocol.Topics().topic(protocol.HA_DISCOVERY, node_id="cam.1", sensor="fps")


def test_a_sample_meta_is_its_prediction_and_a_reason() -> None:
    prediction = protocol.Prediction.decode(json.dumps(_prediction()))
    meta = protocol.SampleMeta.of(prediction, "random")
    expected = {k: v for k, v in _prediction().items() if k not in ("schema", "latency_ms")} | {"reason": "random"}
    assert json.loads(meta.encode()) == expected
    assert protocol.SampleMeta.decode(json.dumps(expected)) == meta


def test_telemetry_keeps_what_it_does_not_know_and_names_the_model() -> None:
    assert protocol.Telemetry.decode(b'{"fps": 29.7, "backend": "tensorrt"}').fps == pytest.approx(29.7)
    sent = {
        "schema": 1, "device_id": "jetson-3", "ts": 1.5, "fps": 30.0, "backend": "tensorrt",
        "model": {"name": "flowers", "version": "3"},
        "latency_ms": {"infer_p50": 1.0, "infer_p99": 2.0, "total_p50": 3.0, "total_p99": 4.0},
        "frames": {"processed": 9}, "outbox": {"pending": 0, "dropped": 0},
        "system": {"gpu_percent": 41.0, "temperatures": {"GPU": 51.5}, "power_mw": None}, "emc_percent": 12,
    }  # fmt: skip
    telemetry = protocol.Telemetry.decode(json.dumps(sent))
    assert telemetry.model == protocol.ModelRef(name="flowers", version="3")
    assert json.loads(telemetry.encode()) == sent


def test_telemetry_drops_an_extra_figure_json_cannot_hold_and_refuses_a_declared_one() -> None:
    telemetry = protocol.Telemetry.decode(b'{"": Infinity, "emc_percent": NaN, "gpu_mhz": 918.0}')
    assert telemetry.encode() == b'{"schema":1,"gpu_mhz":918.0}'
    assert protocol.Telemetry.decode(telemetry.encode()) == telemetry
    with pytest.raises(protocol.ProtocolError):
        protocol.Telemetry.decode(b'{"fps": Infinity}')


@pytest.mark.parametrize(
    ("payload", "reason"),
    [(b"{not json", "bad_json"), (b"[" * 30_000, "bad_json"), (b"[1, 2]", "schema"), (b'{"fps": -1}', "schema")],
)
def test_protocol_errors_name_their_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(protocol.ProtocolError) as refused:
        protocol.Telemetry.decode(payload)
    assert refused.value.reason == reason


def test_topic_and_id_errors_name_their_reason() -> None:
    with pytest.raises(protocol.ProtocolError) as refused:
        protocol.Topics().parse_device_topic("edgeloop/devices/.x/predictions")
    assert refused.value.reason == "bad_topic"
    with pytest.raises(protocol.ProtocolError) as refused:
        protocol.check_id("a/b")
    assert refused.value.reason == "bad_id"
