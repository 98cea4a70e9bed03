"""The registry, the gate and rollout against a real broker and real trainings: a version is
registered with its training images, a candidate trained on deliberately mislabelled images is
rejected and never announced, a canary is widened, a rollback re-announces the previous version;
simultaneous triggers make one training job; the API and the CLI show test accuracy per slice."""

import json
import shutil
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cloud.aggregator.metrics import Metrics
from cloud.api import models
from cloud.api.app import create_app
from cloud.registry import gate
from cloud.registry.refresh import Refresher
from cloud.registry.rollout import Rollout
from cloud.registry.versions import Registry, RegistryError
from cloud.retrain.config import RetrainConfig
from cloud.retrain.dataset import split_of
from cloud.retrain.train import retrain
from cloud.store import connect
from cloud.training.jobs import Jobs
from common import bundle, protocol, signing
from common.mqtt import url
from tests.support.broker import Recorder
from tests.support.cli import run_cli
from tests.support.waiting import wait_for


def test_simultaneous_triggers_make_one_job(db_url: str) -> None:
    jobs = Jobs(connect(db_url))
    barrier = threading.Barrier(8)
    results = []

    def trigger(i: int) -> None:
        barrier.wait()
        results.append(Jobs(connect(db_url)).request("colours", f"trigger {i}"))

    threads = [threading.Thread(target=trigger, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(created for _, created in results) == 1
    active = jobs.active("colours")
    assert sorted(active.reasons) == sorted(f"trigger {i}" for i in range(8)), "every reason is kept"
    claimed = jobs.claim()
    assert claimed.id == active.id
    assert claimed.state == "running"
    assert jobs.claim() is None
    again, created = jobs.request("colours", "during the training")
    assert (created, again.id) == (False, active.id), "a trigger during a training joins it"
    jobs.finish(claimed, True, "2", "done")
    assert jobs.active("colours") is None
    assert jobs.request("colours", "after")[1], "after the training a trigger queues a new one"


def place(registry: Registry, trained: Path) -> Path:
    """Put a trained bundle where the registry keeps its version."""
    meta = bundle.load(trained).meta
    target = registry.bundle_dir(meta.name, meta.version)
    shutil.copytree(trained, target)
    return target


def train(images: Path, output: Path, version: str, cache: Path, flags: dict) -> Path:
    retrain(RetrainConfig(image_dir=images, output_dir=output, name="colours", version=version, bottleneck_dir=cache,
                          **flags))  # fmt: skip
    return output


def swap_training_labels(images: Path, target: Path, a: str, b: str, flags: dict) -> Path:
    """The same images, with every training-split image of `a` filed under `b` and vice versa; the
    split follows the file name, so validation and test images keep their true labels."""
    shutil.copytree(images, target)
    for src, dst in ((a, b), (b, a)):
        for path in sorted((images / src).iterdir()):
            if split_of(path.name, flags["validation_percentage"], flags["testing_percentage"]) == "train":
                (target / src / path.name).rename(target / dst / path.name)
    return target


@pytest.fixture
def registry(tmp_path: Path, tiny_images: Path):
    data = tmp_path / "data"
    shutil.copytree(tiny_images, data / "datasets" / "colours")
    return Registry(connect(f"sqlite:///{tmp_path / 'db.sqlite'}"), data)


def test_gate_rollout_canary_and_rollback(registry, broker, tiny_bundle, tiny_images, tiny_flags, tmp_path) -> None:
    recorder = Recorder(broker.url, "edgeloop/models/#")
    signing.generate(tmp_path / "registry.key", tmp_path / "registry.pub")
    signer = signing.Signer(tmp_path / "registry.key")
    rollout = Rollout(
        registry, url.parse(broker.url), protocol.Topics(), "http://cloud.example:8080", signer, lifetime_s=3600
    )
    dataset = registry.root.parent / "datasets" / "colours"
    first = registry.add(place(registry, tiny_bundle), trigger="initial")
    assert first.state == "candidate"
    assert first.parent is None
    images = registry.images("colours", first.version)
    stats = bundle.load(tiny_bundle).meta.images
    assert len(images) == stats.train + stats.validation + stats.test == 120
    train_labels = [label for _, label, split in images if split == "train"]
    assert first.label_counts == {label: train_labels.count(label) for label in ("blue", "green", "red")}

    verdict = gate.judge(registry.bundle_dir("colours", first.version), None, dataset, gate.GatePolicy())
    assert verdict["passed"]
    assert verdict["why"] == "no promoted version yet"
    rollout.promote("colours", first.version)
    wait_for(lambda: recorder.on("/colours"), 10, "the announcement")
    announced = protocol.Announcement.decode(recorder.on("/colours")[-1].payload)
    assert announced.version == first.version
    assert announced.groups is None
    assert announced.url == f"http://cloud.example:8080/models/colours/{first.version}.tar.gz"
    assert announced.sha256 == bundle.sha256_file(registry.archive("colours", first.version))
    signing.Verifier(tmp_path / "registry.pub").verify(json.loads(recorder.on("/colours")[-1].payload))
    assert 3590 <= (announced.expires - datetime.now(timezone.utc)).total_seconds() <= 3600

    # Trained on red and green swapped: rejected on today's (true) test split, never announced.
    cache = tmp_path / "cache"
    mislabelled = swap_training_labels(tiny_images, tmp_path / "mislabelled", "red", "green", tiny_flags)
    bad_dir = train(mislabelled, registry.bundle_dir("colours", "bad"), "bad", cache, tiny_flags)
    bad = registry.add(bad_dir, trigger="test")
    verdict = gate.judge(bad_dir, registry.bundle_dir("colours", first.version), dataset, gate.GatePolicy(margin=0.05))
    registry.decide(bad, verdict["passed"], verdict)
    assert not verdict["passed"], verdict
    assert verdict["candidate_accuracy"] < verdict["promoted_accuracy"] - 0.3
    assert verdict["rule"] == "margin", "no field images: the margin on all test images decides"
    assert verdict["slices"]["seed"]["images"] == verdict["test_images"]
    assert verdict["slices"]["field"]["images"] == 0
    assert registry.get("colours", "bad").state == "rejected"
    with pytest.raises(RegistryError, match="rejected"):
        rollout.promote("colours", "bad")

    # A good second version: a canary first, then the fleet; then rolled back.
    good = registry.add(train(dataset, registry.bundle_dir("colours", "good"), "good", cache, tiny_flags))
    assert good.parent == first.version
    rollout.promote("colours", "good", ["canary"])
    assert not rollout.canary_ready("colours"), "no canary device runs it yet"
    registry.db.execute(
        "INSERT INTO devices (device_id, state, last_seen, model_name, model_version, device_group) "
        "VALUES ('cam-9', 'online', ?, 'colours', 'good', 'canary')",
        (time.time(),),
    )
    assert rollout.canary_ready("colours")
    rollout.widen("colours")
    rollout.rollback("colours")
    wait_for(lambda: len({m.payload for m in recorder.on("/colours")}) >= 4, 10, "four announcements")
    # A retained announcement comes again if the recorder reconnects (a loaded machine): once per serial.
    by_serial = {a.serial: a for a in (protocol.Announcement.decode(m.payload) for m in recorder.on("/colours"))}
    seen = [by_serial[serial] for serial in sorted(by_serial)]
    assert [(a.version, a.groups) for a in seen] == [
        (first.version, None), ("good", ["canary"]), ("good", None), (first.version, None)
    ]  # fmt: skip
    assert "bad" not in {a.version for a in seen}
    assert len(seen) == 4, "each announcement a serial of its own"
    assert Refresher(registry, rollout).refresh(), "what serve does on start and before the announcement expires"
    wait_for(lambda: len(recorder.on("/colours")) >= 5, 10, "the promoted version announced again")
    again = protocol.Announcement.decode(recorder.on("/colours")[-1].payload)
    assert (again.version, again.groups, again.serial > seen[-1].serial) == (first.version, None, True)
    states = {v.version: v.state for v in registry.list("colours")}
    assert states == {first.version: "promoted", "bad": "rejected", "good": "rejected"}
    assert json.loads(json.dumps(registry.get("colours", "bad").gate))["passed"] is False
    recorder.close()


def test_cli_adds_a_bundle_trained_elsewhere_promotes_and_lists_it(broker, tiny_bundle, tmp_path) -> None:
    recorder = Recorder(broker.url, "edgeloop/models/#")
    where = ["--db", f"sqlite:///{tmp_path / 'db.sqlite'}", "--data-dir", tmp_path / "data", "--broker", broker.url]
    version = bundle.load(tiny_bundle).meta.version
    added = run_cli("cloud", "models", "add", tiny_bundle, "--promote", *where)
    assert f"{version} promoted to the fleet" in added.stdout
    wait_for(lambda: recorder.on("/colours"), 10, "the announcement")
    assert protocol.Announcement.decode(recorder.on("/colours")[-1].payload).version == version
    listed = run_cli("cloud", "models", "list", *where[:4]).stdout
    assert version in listed
    assert "promoted" in listed
    again = run_cli("cloud", "models", "add", tiny_bundle, *where, check=False)
    assert again.returncode == 2
    assert "already in the registry" in again.stderr
    recorder.close()


def with_metrics(source: Path, registry: Registry, version: str, metrics: bundle.Metrics) -> Path:
    """A copy of a trained bundle as another version of it, reporting these metrics."""
    target = registry.bundle_dir("colours", version)
    shutil.copytree(source, target)
    meta = bundle.read_meta(target).model_copy(update={"version": version, "metrics": metrics})
    bundle.write_meta(target, meta)
    return target


def test_api_and_cli_show_test_accuracy_per_slice(tiny_bundle, tmp_path) -> None:
    data, db_url = tmp_path / "data", f"sqlite:///{tmp_path / 'db.sqlite'}"
    registry = Registry(connect(db_url), data)
    trained = bundle.load(tiny_bundle).meta.metrics
    seed, field = bundle.SliceMetrics(images=60, accuracy=0.95), bundle.SliceMetrics(images=42, accuracy=34 / 42)
    devices = {"cam-1": bundle.SliceMetrics(images=30, accuracy=0.8)}
    sliced = trained.model_copy(update={"slices": {"seed": seed, "field": field}, "devices": devices})
    old = registry.add(
        with_metrics(tiny_bundle, registry, "old", trained.model_copy(update={"slices": {}, "devices": {}}))
    )
    registry.decide(old, True, {"passed": True, "why": "no promoted version yet", "candidate_accuracy": 0.9})
    field_verdict = {"images": 42, "candidate": 34 / 42, "promoted": 28 / 42, "b": 1, "c": 7, "p_value": 0.0703}
    slices = {"seed": {"images": 60, "candidate": 0.95, "promoted": 0.95}, "field": field_verdict}
    verdict = {"passed": True, "why": "better on the field", "rule": "field", "slices": slices}
    registry.decide(registry.add(with_metrics(tiny_bundle, registry, "sliced", sliced)), True, verdict)

    api = TestClient(create_app(registry.db, Metrics(), data, [models.router(Jobs(registry.db), registry, data)]))
    listed = {v["version"]: v for v in api.get("/api/models").json()}
    figures = ("seed_accuracy", "field_accuracy", "field_test_images")
    assert [listed["sliced"][k] for k in figures] == [0.95, 34 / 42, 42]
    assert listed["sliced"]["metrics"]["slices"] == {"seed": vars(seed), "field": vars(field)}, "metrics kept as is"
    assert listed["sliced"]["metrics"]["devices"] == {"cam-1": {"images": 30, "accuracy": 0.8}}
    assert listed["sliced"]["gate"] == verdict
    assert [listed["old"][k] for k in figures] == [None, None, None], "a version from before slices"

    where = ["--db", db_url, "--data-dir", data]
    lines = {line.split()[1]: line for line in run_cli("cloud", "models", "list", *where).stdout.splitlines()}
    assert "seed=0.950 field=0.810 field_images=42" in lines["sliced"]
    assert "[rule=field, field p=0.0703: better on the field]" in lines["sliced"]
    assert "seed=n/a   field=n/a   field_images=n/a" in lines["old"]
    assert lines["old"].endswith("  [no promoted version yet]"), "a verdict from before slices"
    as_json = [json.loads(line) for line in run_cli("cloud", "models", "list", "--json", *where).stdout.splitlines()]
    assert [(v["version"], v["field_accuracy"], v["field_test_images"]) for v in as_json] == [
        ("sliced", 34 / 42, 42), ("old", None, None)
    ]  # fmt: skip
