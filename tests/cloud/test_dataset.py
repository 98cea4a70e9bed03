import hashlib
from pathlib import Path

import numpy as np
import pytest

from cloud.retrain.dataset import Splits, check_trainable, draw_probabilities, scan, split_of
from cloud.retrain.errors import RetrainError
from tests.support.data import write_dataset


def retrain_py_split(name: str, validation: float, testing: float) -> str:
    """retrain.py's which_set, transcribed independently (MAX_NUM_IMAGES_PER_CLASS = 2**27 - 1)."""
    import re

    base = re.sub(r"_nohash_.*$", "", name)
    percentage = (int(hashlib.sha1(base.encode()).hexdigest(), 16) % (2**27)) * (100.0 / (2**27 - 1))
    return "validation" if percentage < validation else "test" if percentage < validation + testing else "train"


def test_split_matches_retrain_py_and_respects_percentages() -> None:
    names = [f"img_{i}.jpg" for i in range(4000)]
    splits = [split_of(n, 10, 10) for n in names]
    assert splits == [retrain_py_split(n, 10, 10) for n in names]
    share = {s: splits.count(s) / len(names) for s in ("train", "validation", "test")}
    assert share["train"] == pytest.approx(0.8, abs=0.03)
    assert share["validation"] == pytest.approx(0.1, abs=0.02)


def test_nohash_suffix_keeps_variants_of_one_image_together() -> None:
    assert len({split_of(f"dog_nohash_{i}.jpg", 30, 30) for i in range(50)}) == 1


def test_adding_images_never_moves_an_existing_one(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "d", per_label=15, seed=1)
    before = {r.path: r.split for r in scan(root, Splits(20, 20)).records}
    write_dataset(root, per_label=15, seed=2)
    after = {r.path: r.split for r in scan(root, Splits(20, 20)).records}
    assert len(after) == 2 * len(before)
    assert all(after[path] == split for path, split in before.items())


def test_labels_are_folders_and_non_images_are_ignored(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "d", per_label=3)
    (root / "red" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "red" / "notes.txt").write_text("hi")
    (root / "empty").mkdir()
    dataset = scan(root, Splits())
    assert dataset.labels == ["blue", "green", "red"]
    assert len(dataset.records) == 9
    assert sorted(p.name for p in dataset.ignored) == [".DS_Store", "notes.txt"]


def test_missing_and_empty_folders_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RetrainError, match="does not exist"):
        scan(tmp_path / "nope", Splits())
    with pytest.raises(RetrainError, match="no images found"):
        scan(tmp_path, Splits())


def test_one_label_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RetrainError, match=r"only one label \(red\)"):
        scan(write_dataset(tmp_path / "d", per_label=5, labels=("red",)), Splits())


def test_a_label_without_training_images_is_a_clear_error(tmp_path: Path) -> None:
    dataset = scan(write_dataset(tmp_path / "d", per_label=5), Splits())
    dataset.drop({r.path for r in dataset.records if dataset.labels[r.label] == "green"})
    with pytest.raises(RetrainError, match="no training images for label"):
        check_trainable(dataset)


def test_field_images_have_their_own_split_and_weight(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "d", per_label=30)
    for i in range(200):
        (root / "red" / f"{hashlib.sha256(str(i).encode()).hexdigest()}.jpg").write_bytes(b"")
    dataset = scan(root, Splits(validation=10, testing=10, field_validation=0, field_testing=30))
    field = [r for r in dataset.records if r.slice == "field"]
    assert len(field) == 200
    assert all(r.split != "validation" for r in field)
    assert 40 < sum(r.split == "test" for r in field) < 80  # 30% of 200
    assert all(r.slice == "seed" for r in dataset.records if r not in field)
    indices = np.arange(len(dataset.records))
    p = draw_probabilities(dataset.records, indices, field_weight=3.0)
    assert p is not None
    assert p.sum() == pytest.approx(1.0)
    assert p[[dataset.records.index(field[0])]][0] == pytest.approx(3 * p[0])
    assert draw_probabilities(dataset.records, indices, field_weight=1.0) is None, "drawn as retrain.py draws"
