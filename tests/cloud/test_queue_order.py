"""The labelling queue in a strategy's order (GET /api/samples?order=…), with the real pieces: samples
filed as the aggregator files them, a trained bundle promoted in the registry, its base network's
bottlenecks and its TFLite classifier. The tests that need the network's features to mean something
(near-duplicates, scenes) use the real MobileNet weights of ../shared; the others, the tiny model."""

import logging
import shutil
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
from fastapi.testclient import TestClient

from cloud.aggregator.metrics import Metrics
from cloud.aggregator.writer import sample_path
from cloud.api.app import create_app
from cloud.options import QueueOrder
from cloud.registry.versions import Registry
from cloud.retrain import architectures
from cloud.selection.queue import Queue, QueuePolicy
from cloud.selection.strategies import STRATEGIES
from cloud.store import connect
from common import bundle
from tests.support.data import COLOURS, encode_jpeg, synthetic_image
from tests.support.registry import register
from tests.support.samples import store_pictures, store_samples
from tests.support.shared import MOBILENET_025_128_TOP, needs_shared

EVERY_PICTURE_ITS_OWN = 0.9999  # a similarity no two different pictures reach: nothing collapses


@pytest.fixture(scope="module")
def real_bundle(tmp_path_factory: pytest.TempPathFactory, tiny_images: Path, tiny_flags: dict[str, object]) -> Path:
    """The colours model on the real MobileNet 0.25/128 ImageNet weights: features that mean something."""
    if not MOBILENET_025_128_TOP.exists():
        pytest.skip(f"{MOBILENET_025_128_TOP} is absent (../shared is not beside the project)")
    from cloud.retrain.config import RetrainConfig
    from cloud.retrain.train import retrain

    out = tmp_path_factory.mktemp("real") / "colours"
    flags = tiny_flags | {"weights": str(MOBILENET_025_128_TOP)}
    retrain(RetrainConfig(image_dir=tiny_images, output_dir=out, bottleneck_dir=out.parent / "bn", **flags))
    return out


@pytest.fixture
def store(tmp_path: Path):
    db = connect(f"sqlite:///{tmp_path / 'edgeloop.db'}")
    yield db, tmp_path / "data"
    db.close()


@pytest.fixture
def any_store(db_url: str, tmp_path: Path):
    """The store on SQLite and on PostgreSQL, for the tests of its queries."""
    db = connect(db_url)
    yield db, tmp_path / "data"
    db.close()


def promote(db, data: Path, trained: Path) -> str:
    """The bundle registered and promoted as the registry does it; its model's name."""
    meta = bundle.read_meta(trained)
    registry = Registry(db, data)
    shutil.copytree(trained, registry.bundle_dir(meta.name, meta.version))
    registry.set_promoted(registry.add(registry.bundle_dir(meta.name, meta.version)), None)
    (data / "datasets" / meta.name).mkdir(parents=True, exist_ok=True)
    return meta.name


def client(db, data: Path, **policy) -> TestClient:
    return TestClient(create_app(db, Metrics(), data, queue=Queue(db, data, QueuePolicy(**policy))))


def queue(api: TestClient, **params) -> list[dict]:
    response = api.get("/api/samples", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def picture(colour: str, seed: int) -> np.ndarray:
    return synthetic_image(colour, np.random.default_rng(seed))


def ambiguous(first: str, second: str, seed: int) -> np.ndarray:
    """Half one colour, half the other: a picture the colours model cannot be sure of."""
    left, right = picture(first, seed), picture(second, seed + 1)
    return np.concatenate([left[:, :48], right[:, 48:]], axis=1)


def noisy(rgb: np.ndarray, seed: int) -> np.ndarray:
    """The same picture a moment later: a little sensor noise, other JPEG bytes."""
    noise = np.random.default_rng(seed).normal(0, 2, rgb.shape)
    return np.clip(rgb + noise, 0, 255).astype(np.uint8)


@needs_shared(MOBILENET_025_128_TOP)
def test_uncertainty_offers_first_what_the_promoted_model_is_least_sure_of(store, real_bundle: Path) -> None:
    db, data = store
    model = promote(db, data, real_bundle)
    unsure = [ambiguous("red", "green", 1), ambiguous("red", "blue", 3), ambiguous("green", "blue", 5)]
    sure = [picture(colour, 10 + i) for i, colour in enumerate(COLOURS)]
    samples = store_pictures(db, data, [encode_jpeg(p) for p in [*unsure, *sure]], model=model)
    api = client(db, data, similarity=EVERY_PICTURE_ITS_OWN)
    offered = [s["id"] for s in queue(api, order="uncertainty")]
    assert sorted(offered) == sorted(s.id for s in samples)
    assert set(offered[:3]) == {s.id for s in samples[:3]}
    assert [s["id"] for s in queue(api, order="newest")] == [s.id for s in reversed(samples)]


@needs_shared(MOBILENET_025_128_TOP)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_near_duplicates_collapse_to_one_offer_that_counts_them(store, real_bundle: Path, strategy: str) -> None:
    db, data = store
    model = promote(db, data, real_bundle)
    scene = ambiguous("red", "green", 1)
    others = [picture(colour, 10 + i) for i, colour in enumerate(COLOURS)]
    pictures = [scene, *(noisy(scene, seed) for seed in range(4)), *others]
    samples = store_pictures(db, data, [encode_jpeg(p) for p in pictures], model=model)
    api = client(db, data)
    offered = {s["id"]: s["duplicates"] for s in queue(api, order=strategy)}
    copies = {s.id for s in samples[:5]}
    assert len(offered) == 4
    (shown,) = copies & offered.keys()
    assert offered.pop(shown) == 4
    assert offered == {s.id: 0 for s in samples[5:]}

    assert api.post(f"/api/samples/{shown}/label", json={"label": "red"}).status_code == 200
    offered = {s["id"]: s["duplicates"] for s in queue(api, order=strategy)}
    left = copies - {shown}  # a label on the one shown is not a label on the pictures it stood for
    assert len(left & offered.keys()) == 1
    assert offered[(left & offered.keys()).pop()] == 3
    assert len(queue(api, order="newest")) == 7


@needs_shared(MOBILENET_025_128_TOP)
def test_diversity_offers_one_of_each_scene_before_a_second(store, real_bundle: Path) -> None:
    db, data = store
    model = promote(db, data, real_bundle)
    scenes = [colour for colour in COLOURS for _ in range(4)]  # four pictures of each colour, blue last
    pictures = [picture(colour, seed) for seed, colour in enumerate(scenes)]
    samples = store_pictures(db, data, [encode_jpeg(p) for p in pictures], model=model)
    scene_of = {s.id: colour for s, colour in zip(samples, scenes, strict=True)}
    api = client(db, data, similarity=EVERY_PICTURE_ITS_OWN)  # the strategy, not the collapse, tells them apart
    assert sorted(scene_of[s["id"]] for s in queue(api, order="diversity", limit=3)) == sorted(COLOURS)
    assert {scene_of[s["id"]] for s in queue(api, order="newest", limit=3)} == {"blue"}


def test_the_orders_are_newest_and_the_selection_strategies() -> None:
    assert get_args(QueueOrder) == ("newest", *STRATEGIES)


def test_newest_is_unchanged_and_the_service_default_applies(any_store) -> None:
    db, data = any_store
    first = store_pictures(db, data, [encode_jpeg(picture("red", seed)) for seed in range(3)])
    other = store_samples(db, data, 2, model="colours", seed=1)
    api = client(db, data, order="newest")
    newest = [s["id"] for s in queue(api)]
    assert newest[:2] == sorted(s.id for s in other)  # one batch: the same arrival, then by id
    assert newest[2:] == [s.id for s in reversed(first)]
    assert [s["duplicates"] for s in queue(api)] == [0] * 5
    assert [s["id"] for s in queue(api, model="flowers", limit=2)] == [first[2].id, first[1].id]
    assert api.get("/api/samples").headers["X-Queue-Order"] == "newest"
    api.post(f"/api/samples/{first[0].id}/discard")
    assert [s["id"] for s in queue(api, status="discarded", order="hybrid")] == [first[0].id]


def test_an_unknown_order_is_refused(store) -> None:
    db, data = store
    store_samples(db, data, 1)
    refused = client(db, data).get("/api/samples", params={"order": "smartest"})
    assert refused.status_code == 422
    assert "hybrid" in refused.text


def test_without_a_usable_promoted_version_a_model_is_newest_first(any_store, caplog) -> None:
    db, data = any_store
    flowers = store_pictures(db, data, [encode_jpeg(picture("red", seed)) for seed in range(3)])
    colours = store_pictures(db, data, [encode_jpeg(picture("blue", seed)) for seed in range(2)], model="colours")
    register(db, "3", {"daisy": 1})  # flowers 3 promoted, but no bundle on disk
    api = client(db, data)
    with caplog.at_level(logging.WARNING, logger="cloud.selection.queue"):
        response = api.get("/api/samples", params={"order": "hybrid"})
    assert response.headers["X-Queue-Order"] == (
        "colours: newest (no promoted model); flowers: newest (cannot load the promoted model 3)"
    )
    assert [s["id"] for s in response.json()] == [s.id for s in [*reversed(colours), *reversed(flowers)]]
    assert "cannot load the promoted model 3" in caplog.text
    assert [s["id"] for s in queue(api, order="hybrid", limit=3)] == [colours[1].id, colours[0].id, flowers[2].id]


def test_an_unreadable_picture_is_skipped_offered_last_and_counted(store, tiny_bundle: Path, caplog) -> None:
    db, data = store
    model = promote(db, data, tiny_bundle)
    samples = store_pictures(db, data, [encode_jpeg(picture(c, seed)) for seed in range(3) for c in COLOURS], model)
    broken = samples[4]
    sample_path(data, broken.id).write_bytes(broken.jpeg[: len(broken.jpeg) // 2])
    api = client(db, data, similarity=EVERY_PICTURE_ITS_OWN)
    for strategy in STRATEGIES:
        with caplog.at_level(logging.WARNING):
            response = api.get("/api/samples", params={"order": strategy})
        offered = [s["id"] for s in response.json()]
        assert sorted(offered) == sorted(s.id for s in samples)
        assert offered[-1] == broken.id
        assert response.headers["X-Queue-Unreadable"] == "1"
        assert response.headers["X-Queue-Order"] == f"{model}: {strategy}"
    assert caplog.text.count(f"skipping {sample_path(data, broken.id)}") == 1  # once, not at every refresh


def test_the_queue_fills_the_retrainers_bottleneck_cache(store, tiny_bundle: Path, caplog) -> None:
    db, data = store
    model = promote(db, data, tiny_bundle)
    samples = store_pictures(db, data, [encode_jpeg(picture(c, seed)) for seed in range(2) for c in COLOURS], model)
    queue(client(db, data), order="hybrid")
    meta = bundle.read_meta(tiny_bundle)
    arch = architectures.parse(meta.architecture)
    network = architectures.fingerprint(arch, architectures.load_base(arch, str(meta.training["weights"]), 0))
    cached = {p.stem for p in (data / "bottlenecks" / network).rglob("*.f32")}
    assert cached == {s.id for s in samples}  # the key a training of these pictures looks up
    with caplog.at_level(logging.INFO, logger="cloud.retrain.bottlenecks"):
        queue(client(db, data), order="diversity")  # a new service: nothing in memory
    assert f"bottlenecks: 0 computed, {len(samples)} cached" in caplog.text
