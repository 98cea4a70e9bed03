"""The trainer in the service: a model whose dataset has a sweep.yaml is trained by a sweep, and the
sweep's best run is the candidate that goes through the gate, is registered and announced."""

import json
import shutil
from pathlib import Path

import yaml

from cloud.registry.rollout import Rollout
from cloud.registry.versions import Registry
from cloud.store import connect
from cloud.training.jobs import Jobs
from cloud.training.trainer import Trainer, TrainingPolicy
from common import protocol
from common.mqtt import url
from tests.support.broker import Recorder
from tests.support.waiting import wait_for


def test_a_sweep_as_a_training_job_promotes_its_best_run(broker, tiny_images, tiny_flags, tmp_path: Path) -> None:
    data = tmp_path / "data"
    dataset = Path(shutil.copytree(tiny_images, data / "datasets" / "colours"))
    sweep = dict(tiny_flags) | {"learning_rate": [0.02, 0.2], "edge_backends": ["tflite"], "edge_frames": 10}
    (dataset / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    db = connect(f"sqlite:///{tmp_path / 'db.sqlite'}")
    jobs, registry = Jobs(db), Registry(db, data)
    rollout = Rollout(registry, url.parse(broker.url), protocol.Topics(), "http://cloud.example", lifetime_s=3600)
    recorder = Recorder(broker.url, "edgeloop/models/#")
    trainer = Trainer(jobs, registry, rollout, data, TrainingPolicy(poll_s=0.2))
    job, _ = jobs.request("colours", "manual (test): sweep")
    trainer.start()
    try:
        wait_for(lambda: jobs.get(job.id).state in ("succeeded", "failed"), 300, "the sweep job")
    finally:
        trainer.stop()
    done = jobs.get(job.id)
    assert done.state == "succeeded", done.message
    result = json.loads((data / "sweeps" / "colours" / done.version / "sweep.json").read_text())
    assert len(result["runs"]) == 2
    assert result["best"]["name"] in {run["name"] for run in result["runs"]}
    version = registry.get("colours", done.version)
    assert version.state == "promoted"
    assert version.trigger == "manual (test): sweep"
    wait_for(lambda: recorder.on("/colours"), 10, "the announcement")
    assert protocol.Announcement.decode(recorder.on("/colours")[-1].payload).version == done.version
    recorder.close()
