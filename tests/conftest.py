"""Shared fixtures: data the tests make, the data in ../shared, and a small trained bundle."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.makedata import COLOURS, calibrated_weights, synthetic_image, write_dataset

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The fault report (the `fault_report` fixture, test-artifacts/faults.md): loaded here, above both the cloud's
# and the device's fault tests, so that one table holds the rows of whichever of them ran.
pytest_plugins = ["tests.faults.report"]

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FLOWERS = SHARED / "data" / "flower_photos"
KERAS_WEIGHTS = SHARED / "weights" / "keras"
MOBILENET_025_224 = KERAS_WEIGHTS / "mobilenet_2_5_224_tf_no_top.h5"
MOBILENET_025_128_TOP = KERAS_WEIGHTS / "mobilenet_2_5_128_tf.h5"
TINY_ARCHITECTURE = "mobilenet_0.25_128"


def needs_shared(path: Path) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not path.exists(), reason=f"{path} is absent (../shared is not beside the project)")


def run_cli(module: str, *args: object, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `python -m module args` as a user would, in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{module} {args} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


def assert_real_chart(path: Path, size: tuple[int, int] = (1200, 500)) -> None:
    """A PNG that opens at the size it was drawn at and holds more than a blank canvas."""
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == size
        pixels = np.asarray(image.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50
    assert pixels.std() > 10


def as_flags(options: dict[str, object]) -> list[str]:
    return [item for key, value in options.items() for item in (f"--{key.replace('_', '-')}", str(value))]


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
    from tests.broker import Mosquitto

    server = Mosquitto(tmp_path / "broker").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres():
    import shutil
    import tempfile

    from tests.postgres import Postgres

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
