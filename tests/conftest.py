"""Shared fixtures: data the tests make, a small trained bundle, the services a test starts (a broker,
PostgreSQL), the `services` marker on every test that needs one (`make unit` leaves them out), and the skip of
the `gpu` tests, with the reason, where there is no GPU."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.support.data import COLOURS, TINY_ARCHITECTURE, calibrated_weights, synthetic_image, write_dataset
from tests.support.gpu import gpu_missing

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The fault report (the `fault_report` fixture, test-artifacts/faults.md): loaded here, above both the cloud's
# and the device's fault tests, so that one table holds the rows of whichever of them ran.
pytest_plugins = ["tests.support.fault_report"]

# Fixtures that start a system service (what `make system` installs) or change the machine (a mount): a test
# that uses one, directly or through another fixture, is marked `services`.
SERVICE_FIXTURES = {"broker", "postgres", "browser", "rtsp_camera", "small_disk"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `services` the tests that start a service through a fixture, or run their store on PostgreSQL
    (`db_url`'s postgresql parameter; its sqlite twin needs nothing). Tests that start one themselves
    carry the marker in their module."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("db_url") == "postgresql"
        if on_postgres or SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)
        if item.get_closest_marker("gpu") and (reason := gpu_missing()):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(99)
    sample = np.stack([synthetic_image(label, rng) for label in COLOURS for _ in range(12)])
    return calibrated_weights(TINY_ARCHITECTURE, sample, tmp_path_factory.mktemp("weights") / "base.weights.h5")


@pytest.fixture(scope="session")
def tiny_flags(tiny_weights: Path) -> dict[str, object]:
    """Small and fast: MobileNet 0.25 at 128 with made-up weights, on images the tests draw."""
    return {
        "architecture": TINY_ARCHITECTURE,
        "weights": str(tiny_weights),
        "how_many_training_steps": 150,
        "learning_rate": 0.2,
        "train_batch_size": 32,
        "validation_percentage": 20,
        "testing_percentage": 20,
    }


@pytest.fixture(scope="session")
def tiny_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("images") / "colours", per_label=40)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory, tiny_images: Path, tiny_flags: dict[str, object]) -> Path:
    from cloud.retrain.config import RetrainConfig
    from cloud.retrain.train import retrain

    out = tmp_path_factory.mktemp("bundle") / "colours"
    cache = tmp_path_factory.mktemp("bottlenecks")
    retrain(RetrainConfig(image_dir=tiny_images, output_dir=out, bottleneck_dir=cache, **tiny_flags))
    return out


@pytest.fixture
def broker(tmp_path: Path):
    from tests.support.broker import Mosquitto

    server = Mosquitto(tmp_path / "broker").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres():
    import shutil
    import tempfile

    from tests.support.postgres import Postgres

    workdir = Path(tempfile.mkdtemp(prefix="edgeloop-pg-"))  # pytest's own folders are closed to `postgres`
    os.chmod(workdir, 0o755)
    server = Postgres(workdir).start()
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on SQLite and on a real PostgreSQL (a fresh database each time)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'edgeloop.db'}"
    server = request.getfixturevalue("postgres")
    import psycopg

    name = f"t{os.getpid()}_{abs(hash(request.node.nodeid)) % 10**8}"
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.url.rsplit("/", 1)[0] + f"/{name}"
