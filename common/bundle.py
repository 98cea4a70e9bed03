"""The model bundle: the one definition of its files, its model.json, its checks and its archive form.

A bundle is a directory holding `model.json`, `labels.txt`, `model.tflite`, `saved_model/`,
`model.onnx` (bundles trained before it came have none) and `evaluation.json`. Every file's sha256
is listed in `model.json`, so a device can refuse a bundle that was truncated or tampered with, or
that carries a file nobody listed; a bundle is plain files only (no links). Preprocessing lives
inside the models: every model takes raw RGB uint8 images of `input.height` x `input.width`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MODEL_JSON = "model.json"
LABELS_TXT = "labels.txt"
TFLITE = "model.tflite"
ONNX = "model.onnx"  # optional: not in REQUIRED, so bundles trained before it still load
SAVED_MODEL = "saved_model"
EVALUATION_JSON = "evaluation.json"
DATASET_JSON = "dataset.json"  # every image it was trained and tested on: file, sha256, label, split
SAVED_MODEL_PB = f"{SAVED_MODEL}/saved_model.pb"
REQUIRED = (LABELS_TXT, TFLITE, SAVED_MODEL_PB)
CACHE = ".cache"  # what a device builds beside a bundle (TensorRT engines): never part of it, never in an archive
MAX_ARCHIVE_BYTES = 2 * 1024**3


class BundleError(Exception):
    """A bundle that cannot be used: missing or altered files, bad metadata, an unsafe archive."""


class _Meta(BaseModel):
    # Newer bundles may carry fields an older device does not know: ignore them, never fail.
    model_config = ConfigDict(extra="ignore")


class InputSpec(_Meta):
    height: int = Field(gt=0)
    width: int = Field(gt=0)
    mean: float = Field(description="subtracted inside the model, before the base network")
    std: float = Field(description="divided by inside the model, after the mean")
    layer: str = Field("image", description="name of the SavedModel signature input")
    dtype: Literal["uint8"] = "uint8"


class ClassMetrics(_Meta):
    precision: float
    recall: float
    f1: float
    support: int


class ExportMetrics(_Meta):
    type: Literal["float32", "float16", "int8"]
    test_accuracy: float | None = Field(None, description="the exported TFLite model on the test images")
    agreement: float | None = Field(None, description="share of test images whose top-1 matches training")
    size_bytes: int


class OnnxMetrics(ExportMetrics):
    """The ONNX model, converted from the TFLite one: measured as it is, and against it."""

    tflite_agreement: float | None = Field(None, description="share of test images whose top-1 matches TFLite's")


class SliceMetrics(_Meta):
    """Test accuracy on one slice of the test images: seed, field, or one device's field images."""

    images: int = Field(ge=0, description="test images in the slice")
    accuracy: float | None = Field(None, description="top-1 accuracy on them (None: no images)")


class Metrics(_Meta):
    test_accuracy: float | None
    validation_accuracy: float | None
    train_accuracy: float | None = None
    confusion_matrix: list[list[int]] = Field(description="rows: true label, columns: predicted")
    per_class: dict[str, ClassMetrics]
    tflite: ExportMetrics | None = None
    onnx: OnnxMetrics | None = None
    slices: dict[str, SliceMetrics] = Field(
        default_factory=dict, description="seed (images put in the dataset) and field (labelled samples)"
    )
    devices: dict[str, SliceMetrics] = Field(
        default_factory=dict, description="the field slice per device, for devices with enough test images"
    )


class Timings(_Meta):
    bottleneck_s: float
    train_s: float
    export_s: float = 0.0
    onnx_s: float = Field(0.0, description="of export_s: the ONNX conversion and its check on the test images")


class BottleneckStats(_Meta):
    computed: int
    cached: int


class ImageStats(_Meta):
    train: int
    validation: int
    test: int
    skipped: int = Field(0, description="files that looked like images but could not be decoded")
    skipped_files: list[str] = Field(default_factory=list)
    per_label: dict[str, int] = Field(default_factory=dict, description="training images per label")
    field: int = Field(0, ge=0, description="training images that are labelled samples (the field slice)")


class ModelMeta(_Meta):
    format: int = FORMAT_VERSION
    name: str
    version: str
    created: str = Field(description="ISO 8601, UTC")
    architecture: str
    input: InputSpec
    output_layer: str = "final_result"
    labels: list[str]
    metrics: Metrics
    timings: Timings
    bottlenecks: BottleneckStats
    images: ImageStats
    training: dict[str, object] = Field(default_factory=dict, description="the flags it was trained with")
    files: dict[str, str] = Field(default_factory=dict, description="relative path -> sha256")


class Bundle:
    """A verified bundle on disk."""

    def __init__(self, path: Path, meta: ModelMeta) -> None:
        self.path = path
        self.meta = meta

    @property
    def tflite_path(self) -> Path:
        return self.path / TFLITE

    @property
    def saved_model_path(self) -> Path:
        return self.path / SAVED_MODEL

    def __repr__(self) -> str:
        return f"Bundle({self.meta.name} v{self.meta.version} at {self.path})"

    def verify(self, under: str = "") -> None:
        """Check the bundle's files against model.json: the listed ones are there, no other (a link
        or an unlisted file is refused), and those under `under` (all by default) are unchanged.
        A backend calls it again just before its runtime reads `under`."""
        try:
            _verify(self.path, self.meta, under)
        except (OSError, UnicodeDecodeError) as exc:  # labels.txt listed with its sha256 may still not be text
            raise BundleError(f"{self.path}: cannot read the bundle: {exc}") from exc

    def read(self, name: str) -> bytes:
        """A listed file's bytes, checked against its sha256 as they are read: a runtime handed these
        bytes (not the path) loads exactly what was checked, whatever happens to the file meanwhile."""
        expected = self.meta.files.get(name)
        if expected is None:
            raise BundleError(f"{self.path}: {name} is not listed in {MODEL_JSON}")
        target = self.path / name
        try:
            if target.is_symlink():
                raise BundleError(f"{self.path}: {name} is a link, not a file of the bundle")
            data = target.read_bytes()
        except OSError as exc:
            raise BundleError(f"{self.path}: cannot read {name}: {exc}") from exc
        if hashlib.sha256(data).hexdigest() != expected:
            raise _altered(self.path, name)
        return data


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _content_files(path: Path) -> list[str]:
    """Every file of the bundle but model.json and the device's cache, as relative paths. Links are
    not followed but refused, as is anything else that is not a plain file or a folder."""
    found = []
    for root, dirs, files in os.walk(path):
        here = Path(root)
        if here == path and CACHE in dirs:
            dirs.remove(CACHE)
        for name in [*dirs, *files]:
            entry = here / name
            relative = entry.relative_to(path).as_posix()
            if entry.is_symlink():
                raise BundleError(f"{path}: {relative} is a link; a bundle holds plain files only")
            if name in files and not entry.is_file():
                raise BundleError(f"{path}: {relative} is not a plain file")
            if name in files and relative != MODEL_JSON:
                found.append(relative)
    return sorted(found)


def write_meta(path: Path, meta: ModelMeta) -> ModelMeta:
    """Record every file's sha256 and write model.json (atomically) and labels.txt."""
    (path / LABELS_TXT).write_text("".join(f"{label}\n" for label in meta.labels))
    meta = meta.model_copy(update={"files": {name: sha256_file(path / name) for name in _content_files(path)}})
    tmp = path / f".{MODEL_JSON}.tmp"
    tmp.write_text(meta.model_dump_json(indent=2))
    os.replace(tmp, path / MODEL_JSON)
    return meta


def read_meta(path: Path) -> ModelMeta:
    try:
        return ModelMeta.model_validate_json((Path(path) / MODEL_JSON).read_bytes())
    except FileNotFoundError as exc:
        raise BundleError(f"{path} is not a model bundle: no {MODEL_JSON}") from exc
    except OSError as exc:
        raise BundleError(f"{path} is not a model bundle directory: {exc.strerror}") from exc
    except ValidationError as exc:
        raise BundleError(f"{path}/{MODEL_JSON} is not valid: {exc}") from exc


def load(path: Path | str, verify: bool = True) -> Bundle:
    """Read a bundle and, unless told not to, check that every file is there and unchanged."""
    path = Path(path)
    loaded = Bundle(path, read_meta(path))
    if verify:
        loaded.verify()
    return loaded


def _altered(path: Path, name: str) -> BundleError:
    return BundleError(f"{path}: {name} does not match its sha256 in {MODEL_JSON} (altered?)")


def _verify(path: Path, meta: ModelMeta, under: str) -> None:
    for name in REQUIRED:
        if name not in meta.files:
            raise BundleError(f"{path}: {name} is missing from the bundle")
    present = set(_content_files(path))
    for name in sorted(meta.files):
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise BundleError(f"{path}: {MODEL_JSON} lists a file outside the bundle: {name!r}")
        if name not in present:
            raise BundleError(f"{path}: {name} is listed in {MODEL_JSON} but missing")
    if unlisted := sorted(present - set(meta.files)):
        raise BundleError(f"{path}: {unlisted[0]} is not listed in {MODEL_JSON} (added?)")
    for name, expected in meta.files.items():
        if (not under or name == under or name.startswith(f"{under}/")) and sha256_file(path / name) != expected:
            raise _altered(path, name)
    labels = (path / LABELS_TXT).read_text().splitlines()
    if labels != meta.labels:
        raise BundleError(f"{path}: {LABELS_TXT} disagrees with the labels in {MODEL_JSON}")


def evaluation(bundle: Bundle) -> list[dict[str, object]]:
    """The training-time predictions on the test images: file, sha256, label, predicted, score."""
    rows: list[dict[str, object]] = json.loads((bundle.path / EVALUATION_JSON).read_text())
    return rows


def training_images(bundle: Bundle) -> list[dict[str, str]]:
    """Every image the bundle was trained, validated and tested on: file, sha256, label, split."""
    path = bundle.path / DATASET_JSON
    return json.loads(path.read_text()) if path.exists() else []


def pack(path: Path, archive: Path | None = None) -> Path:
    """Write the bundle as a .tar.gz whose members sit under one folder named after the bundle."""
    path = Path(path)
    archive = Path(archive) if archive else path.with_name(path.name + ".tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        for name in [MODEL_JSON, *_content_files(path)]:
            tar.add(path / name, arcname=f"{path.name}/{name}", recursive=False)
    return archive


def _check_members(archive: Path, members: list[tarfile.TarInfo]) -> str:
    """Refuse links, devices, absolute or escaping paths, names given twice (which one wins depends on
    the reader) and oversized archives; return the root folder."""
    total = 0
    roots = set()
    seen: set[tuple[str, ...]] = set()
    for m in members:
        parts = Path(m.name).parts
        if not parts or m.name.startswith("/") or ".." in parts:
            raise BundleError(f"{archive}: unsafe member path {m.name!r}")
        if parts in seen:
            raise BundleError(f"{archive}: member {m.name!r} is in the archive twice")
        if parts[1:2] == (CACHE,):
            raise BundleError(f"{archive}: member {m.name!r} is a device's cache, never part of a bundle")
        seen.add(parts)
        if not (m.isfile() or m.isdir()):
            raise BundleError(f"{archive}: member {m.name!r} is not a plain file")
        total += m.size
        if total > MAX_ARCHIVE_BYTES:
            raise BundleError(f"{archive}: members exceed {MAX_ARCHIVE_BYTES} bytes")
        roots.add(parts[0])
    if len(roots) != 1:
        raise BundleError(f"{archive}: expected one top-level folder, found {sorted(roots)}")
    return roots.pop()


def unpack(archive: Path, dest: Path) -> Bundle:
    """Extract an archive beside `dest/<bundle>`, verify it there, then move it into place: a bundle
    that fails any check leaves nothing behind, and never mixes with an older one."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            root = _check_members(Path(archive), members)
            for m in members:
                m.mode = 0o755 if m.isdir() else 0o644  # no setuid or world-writable files from an archive
                m.uid = m.gid = 0
                m.uname = m.gname = ""
            # The "data" filter (Python 3.10.12+) re-checks what _check_members did.
            extra: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(staging, members=members, **extra)
        load(staging / root)
        final = dest / root
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=".old-", dir=dest))
            final.rename(old / root)
            shutil.rmtree(old, ignore_errors=True)
        (staging / root).rename(final)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError(f"{archive}: not a readable bundle archive: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return load(final)
