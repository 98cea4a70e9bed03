"""The whole loop, every part real: Mosquitto, `python -m cloud serve` and `python -m edge run` on
a video. The service trains the first version of a new model and announces it; the device runs it
and sends its unsure frames as samples; a person (this test, through the HTTP API) labels them;
the data trigger trains a new version on the added images, it passes the gate and is announced,
and the device's predictions then carry the new version."""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import yaml

from tests.support.api import answers, api, promoted
from tests.support.broker import Recorder
from tests.support.data import COLOURS, write_dataset, write_video
from tests.support.device import start_edge, versions
from tests.support.keys import registry_keys
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.processes import terminate
from tests.support.waiting import wait_for

LABELS_NEEDED = 6
# The test's model (random base features, 40 images a label) scores 0.75-0.8 on a test split of
# about 10 images, so one image is 0.1: the margin keeps that noise from deciding. The gate's own
# test (tests/cloud/test_registry.py) shows it rejects a mislabelled candidate by far more.
GATE_MARGIN = 0.2


def true_colour(jpeg: bytes) -> str:
    """What a person sees in the picture: the label whose colour is nearest its mean."""
    bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    mean = bgr[..., ::-1].reshape(-1, 3).mean(0)
    return min(COLOURS, key=lambda label: float(np.linalg.norm(mean - np.array(COLOURS[label]))))


def test_samples_labelled_retrain_gate_announce_and_the_device_runs_the_new_version(
    broker, tiny_flags, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    dataset = write_dataset(data / "datasets" / "colours", per_label=40)
    (dataset / "retrain.yaml").write_text(yaml.safe_dump(dict(tiny_flags)))
    port = free_port()
    args = ["--broker", broker.url, "--db", f"sqlite:///{tmp_path / 'db.sqlite'}", "--data-dir", data,
            "--http-port", port, "--http-host", "127.0.0.1",  # announcements point at this port by default
            "--trigger-interval-s", 1, "--retrain-after-labels", LABELS_NEEDED,
            "--gate-margin", GATE_MARGIN, "--signing-key", registry_keys()[0]]  # fmt: skip
    serve = subprocess.Popen([sys.executable, "-m", "cloud", "serve", *map(str, args)], cwd=ROOT)
    recorder = Recorder(broker.url, "edgeloop/devices/cam-1/predictions")
    edge = None
    try:
        wait_for(lambda: promoted(port), 180, "the first version trained and promoted")
        first = promoted(port)[0]
        assert first["trigger"] == "initial: the model has never been trained"
        video = write_video(tmp_path / "colours.avi", frames=60, seed=7)
        edge = start_edge(data / "models" / "colours" / first["version"], video, broker, tmp_path / "state", "--loop",
                          "--sample-threshold", 1.0, "--samples-per-minute", 600,
                          "--sample-duplicate-distance", 0)  # fmt: skip
        wait_for(lambda: len(answers(port, "/api/samples") or []) >= LABELS_NEEDED, 60, "samples from the device")

        labelled = []
        for sample in answers(port, "/api/samples")[:LABELS_NEEDED]:
            label = true_colour(api(port, sample["url"]))
            api(port, f"/api/samples/{sample['id']}/label", {"label": label})
            labelled.append(sample["id"])
        wait_for(lambda: promoted(port)[0]["version"] != first["version"], 240, "a new version promoted")
        second = promoted(port)[0]
        assert second["parent"] == first["version"]
        assert second["trigger"].startswith("data: ")
        assert second["gate"]["passed"]
        assert second["gate"]["promoted_accuracy"] is not None, "judged against the first version"
        trained_on = {row[0] for row in _images(tmp_path / "db.sqlite", second["version"])}
        assert set(labelled) <= trained_on, "the labelled samples are in the new version's training images"
        wait_for(lambda: versions(recorder)[-1:] == [second["version"]], 90, "predictions of the new version")
        jobs = answers(port, "/api/jobs")
        assert [j["state"] for j in jobs] == ["succeeded", "succeeded"]
        assert second["version"] in api(port, f"/api/jobs/{jobs[0]['id']}/log").decode(), "the job's log is served"
    finally:
        terminate(edge, serve)
        recorder.close()
    seen = versions(recorder)
    switch = seen.index(second["version"])
    assert set(seen[:switch]) == {first["version"]}
    assert set(seen[switch:]) == {second["version"]}


def _images(db_file: Path, version: str) -> list[tuple]:
    import sqlite3

    with sqlite3.connect(db_file) as conn:
        return conn.execute("SELECT sha256 FROM model_images WHERE version = ?", (version,)).fetchall()
