"""Triggers decide from the store and the data directory: a model never trained, the period, new
labels, the fleet's confidence; the MQTT retrain command queues a job and survives bad commands."""

import time
from pathlib import Path

import paho.mqtt.publish as publish
import pytest

from cloud.datasets import models
from cloud.store import connect
from cloud.store import predictions as prediction_store
from cloud.training.commands import RetrainCommands
from cloud.training.jobs import Jobs
from cloud.training.triggers import TriggerPolicy, Triggers
from common import protocol
from common.mqtt import url
from tests.support.waiting import wait_for


@pytest.fixture
def store(db_url: str, tmp_path: Path):
    db = connect(db_url)
    (tmp_path / "datasets" / "colours").mkdir(parents=True)
    (tmp_path / "datasets" / "..bad").mkdir()
    return db, Jobs(db), tmp_path


def finished_job(jobs: Jobs, started_ago_s: float) -> None:
    job, _ = jobs.request("colours", "earlier")
    jobs.claim()
    jobs.db.execute("UPDATE jobs SET started = ? WHERE id = ?", (time.time() - started_ago_s, job.id))
    jobs.finish(job, True, "1", "done")


def prediction(seq: int, ts: float, score: float):
    return prediction_store.prediction_row(
        "cam-1",
        protocol.Prediction(
            device_id="cam-1", seq=seq, ts=ts, model=protocol.ModelRef(name="colours", version="1"),
            top_k=[protocol.Score(label="red", score=score)], latency_ms=protocol.Latency(infer=1, total=1),
        ).model_dump(),
        ts,
    )  # fmt: skip


def test_each_trigger_fires_for_its_reason(store) -> None:
    db, jobs, data = store
    assert models(data) == ["colours"], "a folder that is not a valid model name is ignored"
    triggers = Triggers(db, jobs, data, TriggerPolicy(every_h=2, after_labels=3, min_mean_confidence=0.6,
                                                      window_s=600, min_predictions=10))  # fmt: skip
    assert triggers.reason("colours") == "initial: the model has never been trained"
    assert Triggers(db, jobs, data, TriggerPolicy(initial=False)).reason("colours") is None

    finished_job(jobs, started_ago_s=3 * 3600)
    assert triggers.reason("colours").startswith("periodic: last training 3.0 h ago")

    db.execute("DELETE FROM jobs")
    finished_job(jobs, started_ago_s=1200)
    assert triggers.reason("colours") is None
    for i in range(3):
        db.execute(
            "INSERT INTO samples (id, device_id, seq, ts, received, model_name, model_version, predicted, score, "
            "reason, status, label, bytes, labelled_at, dataset_path) VALUES (?, 'cam-1', ?, 0, 0, 'colours', '1', "
            "'red', 0.3, 'low_confidence', 'labelled', 'red', 10, ?, ?)",
            (f"{i:064x}", i, time.time(), f"datasets/colours/red/{i:064x}.jpg"),
        )
    assert triggers.reason("colours") == "data: 3 new labelled samples (threshold 3)"

    db.execute("DELETE FROM samples")
    now = time.time()
    rows = [prediction(1, 0, 0.9)] + [prediction(seq, now - 5, 0.4) for seq in range(2, 12)]  # the first: too old
    with db.transaction() as cur:
        prediction_store.insert(cur, rows, now)
    assert triggers.reason("colours") == "drift: mean confidence 0.400 over 10 predictions (threshold 0.6)"
    jobs.request("colours", "manual")
    assert triggers.reason("colours") is None, "nothing fires while a training is queued"


def test_mqtt_retrain_command_queues_a_job_and_survives_bad_ones(store, broker) -> None:
    _, jobs, data = store
    commands = RetrainCommands(jobs, data, url.parse(broker.url), protocol.Topics(), "test-commands")
    commands.start()
    try:
        wait_for(lambda: commands._client.is_connected(), 10, "the command listener")
        time.sleep(0.5)
        port = int(broker.url.rsplit(":", 1)[1])
        for payload in (b"{not json", b'{"model": "../etc"}', b'{"model": "ghost"}',
                        protocol.RetrainRequest(model="colours", reason="operator").encode()):  # fmt: skip
            publish.single("edgeloop/commands/retrain", payload, qos=1, hostname="127.0.0.1", port=port)
        wait_for(lambda: commands.counts["accepted"] == 1, 10, "the valid command")
    finally:
        commands.stop()
    assert commands.counts == {"rejected": 2, "unknown_model": 1, "accepted": 1}
    assert jobs.active("colours").reasons == ["manual (mqtt): operator"]
