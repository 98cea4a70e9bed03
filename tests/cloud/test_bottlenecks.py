import shutil
from pathlib import Path

import numpy as np
import pytest

from cloud.retrain import architectures
from cloud.retrain.bottlenecks import BottleneckCache, compute
from tests.support.data import write_dataset, write_jpeg


@pytest.fixture(scope="module")
def extractor(tiny_weights: Path):
    arch = architectures.parse("mobilenet_0.25_128")
    base = architectures.load_base(arch, str(tiny_weights), 0)
    return architectures.feature_extractor(arch, base), architectures.fingerprint(arch, base)


def _cache(root: Path, network: str) -> BottleneckCache:
    return BottleneckCache(root, network, 256, {"architecture": "mobilenet_0.25_128"})


def _paths(root: Path) -> list[Path]:
    return sorted(root.rglob("*.jpg"))


def test_second_pass_computes_none_and_gives_the_same_features(extractor, tmp_path: Path) -> None:
    model, network = extractor
    paths = _paths(write_dataset(tmp_path / "d", per_label=7))
    first = compute(paths, model, 128, _cache(tmp_path / "bn", network), batch_size=8)
    second = compute(paths, model, 128, _cache(tmp_path / "bn", network), batch_size=8)
    assert (first.computed, first.cached) == (21, 0)
    assert (second.computed, second.cached) == (0, 21)
    np.testing.assert_array_equal(first.features, second.features)
    assert first.features.shape == (21, 256)


def test_batched_features_equal_one_at_a_time(extractor, tmp_path: Path) -> None:
    model, network = extractor
    paths = _paths(write_dataset(tmp_path / "d", per_label=3))
    batched = compute(paths, model, 128, _cache(tmp_path / "a", network), batch_size=9)
    single = compute(paths, model, 128, _cache(tmp_path / "b", network), batch_size=1)
    np.testing.assert_allclose(batched.features, single.features, atol=1e-5)


def test_cache_is_keyed_by_content_not_by_name_or_label(extractor, tmp_path: Path) -> None:
    model, network = extractor
    root = write_dataset(tmp_path / "d", per_label=4)
    compute(_paths(root), model, 128, _cache(tmp_path / "bn", network))
    moved = tmp_path / "moved"
    shutil.copytree(root / "red", moved / "crimson")
    for p in (moved / "crimson").iterdir():
        p.rename(p.with_name("renamed_" + p.name))
    again = compute(_paths(moved), model, 128, _cache(tmp_path / "bn", network))
    assert (again.computed, again.cached) == (0, 4)


def test_other_network_does_not_reuse(extractor, tmp_path: Path) -> None:
    model, network = extractor
    paths = _paths(write_dataset(tmp_path / "d", per_label=2))
    compute(paths, model, 128, _cache(tmp_path / "bn", network))
    other = compute(paths, model, 128, _cache(tmp_path / "bn", "another-network"))
    assert other.computed == 6


def test_corrupt_images_are_skipped_and_reported(extractor, tmp_path: Path) -> None:
    model, network = extractor
    root = write_dataset(tmp_path / "d", per_label=3)
    good = root / "red" / "red_0_000.jpg"
    (root / "red" / "truncated.jpg").write_bytes(good.read_bytes()[:300])
    (root / "red" / "garbage.jpg").write_bytes(b"GIF89a nope")
    result = compute(_paths(root), model, 128, _cache(tmp_path / "bn", network))
    assert sorted(p.name for p, _ in result.skipped) == ["garbage.jpg", "truncated.jpg"]
    assert len(result.shas) == len(result.features) == 9


def test_a_damaged_cache_entry_is_recomputed(extractor, tmp_path: Path) -> None:
    model, network = extractor
    paths = _paths(write_dataset(tmp_path / "d", per_label=2))
    cache = _cache(tmp_path / "bn", network)
    first = compute(paths, model, 128, cache)
    next(cache.dir.rglob("*.f32")).write_bytes(b"\x00" * 12)
    again = compute(paths, model, 128, cache)
    assert (again.computed, again.cached) == (1, 5)
    np.testing.assert_allclose(again.features, first.features, atol=1e-6)


def test_pixels_are_kept_on_request(extractor, tmp_path: Path) -> None:
    model, network = extractor
    root = tmp_path / "d" / "x"
    root.mkdir(parents=True)
    write_jpeg(root / "a.jpg", np.full((50, 70, 3), 128, np.uint8))
    result = compute(_paths(tmp_path / "d"), model, 128, _cache(tmp_path / "bn", network), keep_pixels=True)
    assert result.pixels is not None
    assert result.pixels.shape == (1, 128, 128, 3)
