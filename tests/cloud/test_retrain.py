"""The retrainer end to end, on images the tests make: the CLI, the bundle, the cache, bad input."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from cloud.cli import main
from common import bundle
from tests.support.cli import as_flags, run_cli
from tests.support.data import write_dataset


@pytest.fixture(scope="module")
def messy_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Good images plus what real folders hold: a corrupt JPEG and macOS litter."""
    root = write_dataset(tmp_path_factory.mktemp("messy") / "colours", per_label=30)
    (root / "red" / "corrupt.jpg").write_bytes((root / "red" / "red_0_000.jpg").read_bytes()[:500])
    (root / "blue" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(100))
    return root


def read_scalars(event_dir: Path) -> dict[str, list[float]]:
    """What TensorBoard itself would plot from the event files in `event_dir`."""
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(event_dir), size_guidance={"tensors": 0})
    acc.Reload()
    return {tag: [float(tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)] for tag in acc.Tags()["tensors"]}


@pytest.mark.slow  # two trainings in fresh processes
def test_cli_trains_a_bundle_then_reuses_every_bottleneck(messy_images: Path, tiny_flags, tmp_path: Path) -> None:
    flags = [*as_flags(tiny_flags), "--image-dir", messy_images, "--bottleneck-dir", tmp_path / "bn"]
    first = run_cli("cloud", "retrain", *flags, "--output-dir", tmp_path / "b1", "--summaries-dir", tmp_path / "tb")
    meta = bundle.load(tmp_path / "b1").meta
    assert meta.images.skipped == 1
    assert meta.images.skipped_files[0].startswith("red/corrupt.jpg: truncated")
    assert meta.images.train + meta.images.validation + meta.images.test == 90
    assert meta.bottlenecks.computed == 90
    assert meta.metrics.test_accuracy is not None
    assert meta.metrics.test_accuracy > 0.5
    assert meta.metrics.tflite is not None
    assert meta.metrics.tflite.agreement == 1.0
    assert np.sum(meta.metrics.confusion_matrix) == meta.images.test
    assert set(meta.metrics.per_class) == {"blue", "green", "red"}
    assert meta.timings.bottleneck_s > 0
    assert meta.timings.train_s > 0
    assert "test accuracy" in first.stdout
    assert "90 computed, 0 cached" in first.stdout

    train = read_scalars(tmp_path / "tb" / "train")
    validation = read_scalars(tmp_path / "tb" / "validation")
    assert set(train) == set(validation) == {"accuracy", "cross_entropy"}
    assert len(train["accuracy"]) == 150 // 10
    assert train["cross_entropy"][-1] < train["cross_entropy"][0]

    second = run_cli("cloud", "retrain", *flags, "--output_dir", tmp_path / "b2")
    assert "0 computed, 90 cached" in second.stdout
    assert bundle.load(tmp_path / "b2").meta.bottlenecks.model_dump() == {"computed": 0, "cached": 90}


@pytest.mark.slow  # two trainings
def test_retraining_replaces_a_bundle_in_place(tiny_images: Path, tiny_flags, tmp_path: Path) -> None:
    argv = [
        "retrain",
        *as_flags(tiny_flags),
        "--how-many-training-steps",
        "5",
        "--image-dir",
        str(tiny_images),
    ]
    argv += ["--bottleneck-dir", str(tmp_path / "bn"), "--output-dir", str(tmp_path / "b")]
    assert main([*argv, "--version", "1"]) == 0
    assert main([*argv, "--version", "2"]) == 0
    assert bundle.load(tmp_path / "b").meta.version == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "bn"]


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str], message: str) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_empty_folder(tmp_path: Path, capsys) -> None:
    (tmp_path / "imgs").mkdir()
    _fails(["retrain", "--image-dir", str(tmp_path / "imgs")], capsys, "no images found")


def test_one_label(tmp_path: Path, capsys) -> None:
    root = write_dataset(tmp_path / "imgs", per_label=3, labels=("red",))
    _fails(["retrain", "--image-dir", str(root)], capsys, "only one label (red)")


def test_unknown_architecture(tiny_images: Path, capsys) -> None:
    _fails(
        ["retrain", "--image-dir", str(tiny_images), "--architecture", "vgg16"],
        capsys,
        "unknown architecture",
    )


def test_weights_that_do_not_fit(tiny_images: Path, tiny_weights: Path, tmp_path: Path, capsys) -> None:
    argv = ["retrain", "--image-dir", str(tiny_images), "--architecture", "mobilenet_1.0_128"]
    argv += ["--weights", str(tiny_weights), "--output-dir", str(tmp_path / "b")]
    _fails(argv, capsys, "does not fit architecture mobilenet_1.0_128")
    assert list(tmp_path.iterdir()) == [], "a failed training leaves nothing behind"


def test_unknown_flag_in_yaml(tiny_images: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "r.yaml").write_text(f"image_dir: {tiny_images}\nlearning_rat: 0.1\n")
    _fails(
        ["retrain", "--config", str(tmp_path / "r.yaml")],
        capsys,
        "learning-rat: Extra inputs are not permitted",
    )


def test_refuses_to_overwrite_a_folder_that_is_not_a_bundle(tiny_images: Path, tiny_flags, tmp_path: Path, capsys):
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.tex").write_text("years of work")
    argv = [
        "retrain",
        *as_flags(tiny_flags),
        "--image-dir",
        str(tiny_images),
        "--output-dir",
        str(tmp_path / "precious"),
    ]
    _fails(argv, capsys, "is not a model bundle; refusing")
    assert (tmp_path / "precious" / "thesis.tex").read_text() == "years of work"


def test_every_image_corrupt_in_a_label(tmp_path: Path, tiny_flags, capsys) -> None:
    root = write_dataset(tmp_path / "imgs", per_label=10)
    for p in (root / "green").iterdir():
        p.write_bytes(b"\xff\xd8 broken")
    argv = ["retrain", *as_flags(tiny_flags), "--image-dir", str(root), "--output-dir", str(tmp_path / "b")]
    _fails(argv, capsys, "no training images for label(s) green")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs"], "a failed training leaves nothing behind"


def test_evaluation_lists_every_test_image_with_its_prediction(tiny_bundle: Path, tiny_images: Path) -> None:
    meta = bundle.load(tiny_bundle).meta
    rows = json.loads((tiny_bundle / "evaluation.json").read_text())
    assert len(rows) == meta.images.test
    assert all((tiny_images / row["file"]).is_file() for row in rows)
    accuracy = np.mean([row["label"] == row["predicted"] for row in rows])
    assert accuracy == pytest.approx(meta.metrics.test_accuracy)


def test_the_bundle_lists_every_image_it_was_trained_on(tiny_bundle: Path, tiny_images: Path) -> None:
    loaded = bundle.load(tiny_bundle)
    rows = bundle.training_images(loaded)
    counts = {split: sum(r["split"] == split for r in rows) for split in ("train", "validation", "test")}
    assert counts == {"train": loaded.meta.images.train, "validation": loaded.meta.images.validation,
                      "test": loaded.meta.images.test}  # fmt: skip
    for row in rows:
        path = tiny_images / row["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha256"]
        assert path.parent.name == row["label"]


def test_model_json_reports_accuracy_per_slice_and_per_device(tiny_images: Path, tiny_flags, tmp_path: Path) -> None:
    """Images filed under a sample id (their sha256) are field; the rest seed. Field images have their own
    split, and with the service's devices file the field slice is reported per device."""
    from tests.support.data import COLOURS, synthetic_image, write_jpeg

    rng = np.random.default_rng(5)
    devices = {}
    for i, label in enumerate(COLOURS.keys() for _ in range(60)):
        for name in label:
            picture = write_jpeg(tmp_path / "x.jpg", synthetic_image(name, rng)).read_bytes()
            sha = hashlib.sha256(picture).hexdigest()
            (tiny_images / name / f"{sha}.jpg").write_bytes(picture)
            devices[sha] = "cam-1" if i % 3 else "cam-2"
    (tmp_path / "devices.json").write_text(json.dumps(devices))
    flags = [*as_flags(tiny_flags), "--how-many-training-steps", "30", "--image-dir", tiny_images]
    try:
        flags += ["--bottleneck-dir", tmp_path / "bn", "--output-dir", tmp_path / "b"]
        printed = run_cli(
            "cloud", "retrain", *flags, "--field-devices", tmp_path / "devices.json", "--field-weight", "3"
        )
    finally:
        for sha in devices:
            for name in COLOURS:
                (tiny_images / name / f"{sha}.jpg").unlink(missing_ok=True)
    meta = bundle.load(tmp_path / "b").meta
    used = json.loads((tmp_path / "b" / bundle.DATASET_JSON).read_text())
    field_test = [r for r in used if r["split"] == "test" and Path(r["file"]).stem in devices]
    assert not [r for r in used if r["split"] == "validation" and Path(r["file"]).stem in devices]
    assert meta.metrics.slices["field"].images == len(field_test) > 20
    assert meta.metrics.slices["seed"].images == meta.images.test - len(field_test)
    assert meta.metrics.slices["seed"].accuracy is not None
    assert meta.images.field == 180 - len(field_test)
    assert sum(meta.images.per_label.values()) == meta.images.train
    per_device = {d: sum(devices[Path(r["file"]).stem] == d for r in field_test) for d in ("cam-1", "cam-2")}
    assert {d: m.images for d, m in meta.metrics.devices.items()} == {d: n for d, n in per_device.items() if n >= 10}
    assert "cam-1" in meta.metrics.devices
    assert f"on {len(field_test)} images" in printed.stdout.split("field test accuracy")[1].splitlines()[0]
    assert meta.training["field_weight"] == 3.0
