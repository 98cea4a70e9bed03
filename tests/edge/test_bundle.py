import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from common import bundle


@pytest.fixture
def copy(tiny_bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_bundle, tmp_path / "b"))


def test_bundle_has_the_designed_files_and_fields(tiny_bundle: Path) -> None:
    loaded = bundle.load(tiny_bundle)
    meta = loaded.meta
    for name in (
        "model.json",
        "labels.txt",
        "model.tflite",
        "saved_model/saved_model.pb",
        "model.onnx",
        "evaluation.json",
    ):
        assert (tiny_bundle / name).exists(), name
    raw = json.loads((tiny_bundle / "model.json").read_text())
    for key in ("name", "version", "created", "architecture", "input", "labels", "metrics", "timings"):
        assert key in raw
    assert set(raw["input"]) >= {"height", "width", "mean", "std", "layer"}
    assert set(raw["metrics"]) >= {"test_accuracy", "validation_accuracy", "confusion_matrix", "per_class"}
    assert set(raw["timings"]) >= {"bottleneck_s", "train_s"}
    assert set(raw["bottlenecks"]) == {"computed", "cached"}
    assert meta.labels == ["blue", "green", "red"]
    assert (meta.input.height, meta.input.width) == (128, 128)
    assert "model.tflite" in meta.files
    assert "saved_model/saved_model.pb" in meta.files
    assert (tiny_bundle / "labels.txt").read_text().splitlines() == meta.labels


def test_tampered_file_is_refused(copy: Path) -> None:
    with open(copy / "model.tflite", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    with pytest.raises(bundle.BundleError, match=r"model\.tflite does not match its sha256"):
        bundle.load(copy)


def test_missing_file_is_refused(copy: Path) -> None:
    shutil.rmtree(copy / "saved_model" / "variables")
    with pytest.raises(bundle.BundleError, match="missing"):
        bundle.load(copy)


def test_labels_disagreeing_with_model_json_are_refused(copy: Path) -> None:
    meta = json.loads((copy / "model.json").read_text())
    meta["labels"] = list(reversed(meta["labels"]))
    (copy / "model.json").write_text(json.dumps(meta))
    with pytest.raises(bundle.BundleError, match="disagrees"):
        bundle.load(copy)


def test_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(bundle.BundleError, match=r"no model\.json"):
        bundle.load(tmp_path)
    (tmp_path / "model.json").write_text('{"name": 1}')
    with pytest.raises(bundle.BundleError, match="not valid"):
        bundle.load(tmp_path)


def test_unknown_fields_from_newer_bundles_are_ignored(copy: Path) -> None:
    meta = json.loads((copy / "model.json").read_text())
    meta["from_the_future"] = {"x": 1}
    (copy / "model.json").write_text(json.dumps(meta))
    assert bundle.load(copy).meta.name == meta["name"]


def test_pack_and_unpack_round_trip(tiny_bundle: Path, tmp_path: Path) -> None:
    archive = bundle.pack(tiny_bundle, tmp_path / "b.tar.gz")
    unpacked = bundle.unpack(archive, tmp_path / "out")
    assert unpacked.meta == bundle.load(tiny_bundle).meta
    assert unpacked.path == tmp_path / "out" / tiny_bundle.name


def _archive_with(tmp_path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    import io

    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data) if data else None)
    return archive


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/passwd-copy", "b/../../escape"])
def test_unpack_refuses_escaping_paths(tmp_path: Path, name: str) -> None:
    archive = _archive_with(tmp_path, tarfile.TarInfo(name), b"x")
    with pytest.raises(bundle.BundleError, match="unsafe"):
        bundle.unpack(archive, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def test_unpack_refuses_links(tmp_path: Path) -> None:
    link = tarfile.TarInfo("b/model.tflite")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    with pytest.raises(bundle.BundleError, match="not a plain file"):
        bundle.unpack(_archive_with(tmp_path, link), tmp_path / "out")


def test_unpack_of_garbage_is_a_bundle_error(tmp_path: Path) -> None:
    archive = tmp_path / "x.tar.gz"
    archive.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(bundle.BundleError, match="not a readable"):
        bundle.unpack(archive, tmp_path / "out")


def test_unpack_masks_modes_and_replaces_an_older_bundle(tiny_bundle: Path, tmp_path: Path) -> None:
    archive = tmp_path / "b.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(tiny_bundle.rglob("*")):
            info = tar.gettarinfo(path, arcname=f"{tiny_bundle.name}/{path.relative_to(tiny_bundle)}")
            info.mode = 0o4777 if info.isfile() else 0o777
            with open(path, "rb") if info.isfile() else open(os.devnull, "rb") as f:
                tar.addfile(info, f if info.isfile() else None)
    stale = tmp_path / "out" / tiny_bundle.name / "stale.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("from an older version")
    unpacked = bundle.unpack(archive, tmp_path / "out")
    assert not stale.exists()
    assert (unpacked.path / "model.tflite").stat().st_mode & 0o7777 == 0o644


def test_a_failed_unpack_leaves_nothing_behind(copy: Path, tmp_path: Path) -> None:
    (copy / "labels.txt").write_text("tampered\n")
    archive = bundle.pack(copy, tmp_path / "bad.tar.gz")
    with pytest.raises(bundle.BundleError, match="sha256"):
        bundle.unpack(archive, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_files_outside_the_bundle_are_refused(copy: Path) -> None:
    meta = json.loads((copy / "model.json").read_text())
    meta["files"]["../../etc/hostname"] = "0" * 64
    (copy / "model.json").write_text(json.dumps(meta))
    with pytest.raises(bundle.BundleError, match="outside the bundle"):
        bundle.load(copy)


def test_an_archive_given_as_a_folder_is_a_clear_error(tiny_bundle: Path, tmp_path: Path) -> None:
    archive = bundle.pack(tiny_bundle, tmp_path / "b.tar.gz")
    with pytest.raises(bundle.BundleError, match="not a model bundle directory"):
        bundle.load(archive)
