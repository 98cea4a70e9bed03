"""A hostile model with a valid signature, as if the registry's key were stolen or the cloud taken over:
its SavedModel writes a file when TensorFlow loads it. A real `edge run` on the tf backend (the one that
loads the SavedModel) downloads it from its trusted origin, refuses it before loading it, writes
nothing, keeps classifying with its old model, counts the rejection and still takes a good update
after it. The cloud refuses the same bundle as it enters the registry, so it is never announced."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cloud.cli import main as cloud_main
from cloud.registry.versions import Registry, RegistryError
from cloud.store import connect
from common import bundle
from tests.support.broker import Mosquitto, Recorder
from tests.support.bundle_server import BundleServer
from tests.support.data import write_video
from tests.support.device import start_edge, versions
from tests.support.hostile_models import hostile_bundle
from tests.support.keys import registry_keys
from tests.support.processes import terminate
from tests.support.updates import announce, version_of
from tests.support.waiting import wait_for

pytestmark = pytest.mark.services

HOSTILE, GOOD = "6", "7"


@pytest.fixture(scope="module")
def hostile(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """Version HOSTILE of the tiny bundle, hostile, and the files it would write."""
    root = tmp_path_factory.mktemp("hostile")
    markers = [root / "written-at-load", root / "written-at-serve"]
    return hostile_bundle(tiny_bundle, root / "colours", *markers, version=HOSTILE), markers


@pytest.fixture
def origin():
    server = BundleServer()
    yield server
    server.shutdown()


def _latest(recorder: Recorder, suffix: str) -> dict:
    return json.loads(recorder.on(suffix)[-1].payload) if recorder.on(suffix) else {}


def test_a_signed_hostile_bundle_is_refused_at_load_and_the_device_carries_on(
    tiny_bundle: Path, hostile, broker: Mosquitto, origin: BundleServer, tmp_path: Path
) -> None:
    path, markers = hostile
    old = bundle.load(tiny_bundle).meta
    recorder = Recorder(broker.url, "edgeloop/#")
    state = tmp_path / "state"
    device = start_edge(tiny_bundle, write_video(tmp_path / "video.avi", frames=30), broker, state, "--loop",
                        "--backend", "tf", "--model-origin", origin.url)  # fmt: skip
    try:
        wait_for(lambda: len(versions(recorder)) >= 5, 60, "predictions of the device")
        archive = bundle.pack(path, tmp_path / "hostile.tar.gz").read_bytes()
        announce(broker, old.name, HOSTILE, *origin.add(f"/v{HOSTILE}.tar.gz", archive))
        rejected = "rejected model update: bad_bundle"
        wait_for(lambda: _latest(recorder, "/status").get("message") == rejected, 30, "the device to refuse it")
        assert origin.requests == [f"/v{HOSTILE}.tar.gz"], "the device fetched it: only loading was left to refuse"
        assert _latest(recorder, "/status")["model"]["version"] == old.version
        count = len(versions(recorder))
        wait_for(lambda: len(versions(recorder)) >= count + 10, 30, "predictions after the refusal")
        assert set(versions(recorder)[count:]) == {old.version}
        counted = {"rejected": 1, "rejected bad_bundle": 1}
        wait_for(lambda: _latest(recorder, "/telemetry").get("updates", {}).items() >= counted.items(), 10,
                 "telemetry counting the rejection")  # fmt: skip
        assert not list((state / "models").glob(f"*-{HOSTILE}*")), "a refused bundle is kept nowhere on the device"

        good = bundle.pack(version_of(tiny_bundle, tmp_path, GOOD), tmp_path / "good.tar.gz").read_bytes()
        announce(broker, old.name, GOOD, *origin.add(f"/v{GOOD}.tar.gz", good))
        wait_for(lambda: versions(recorder)[-1:] == [GOOD], 60, "predictions of the good update")
    finally:
        terminate(device)
        recorder.close()
    log = device.stderr.read().decode()
    assert "WriteFile (in __inference__initializer_" in log, "the log names the op and where it is"
    assert not any(m.exists() for m in markers), "the hostile model never ran"


def test_the_registry_refuses_a_hostile_bundle_and_never_announces_it(
    tiny_bundle: Path, hostile, broker: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, markers = hostile
    recorder = Recorder(broker.url, "edgeloop/models/#")
    data, db = tmp_path / "data", f"sqlite:///{tmp_path / 'db.sqlite'}"
    where = ["--db", db, "--data-dir", str(data), "--broker", broker.url, "--signing-key", str(registry_keys()[0])]
    assert cloud_main(["models", "add", str(path), "--promote", *where]) == 2
    error = capsys.readouterr().err
    assert f"error: colours {HOSTILE} is refused:" in error
    assert "holds ops outside the inference allowlist: WriteFile" in error
    registry = Registry(connect(db), data)
    assert registry.list() == []
    assert not registry.bundle_dir("colours", HOSTILE).exists(), "nothing of it stays: fixed, it can be added"
    assert not registry.archive("colours", HOSTILE).exists()

    # The trainer's way in: its bundle is already in place, and registered by the same check.
    trained = Path(shutil.copytree(path, registry.bundle_dir("colours", HOSTILE)))
    with pytest.raises(RegistryError, match="WriteFile"):
        registry.add(trained)
    assert not registry.archive("colours", HOSTILE).exists()
    shutil.rmtree(trained)

    fixed = version_of(tiny_bundle, tmp_path, HOSTILE)
    assert cloud_main(["models", "add", str(fixed), *where]) == 0
    assert [v.version for v in registry.list()] == [HOSTILE]
    assert recorder.on("/colours") == [], "nothing was announced"
    recorder.close()
    assert not any(m.exists() for m in markers)
