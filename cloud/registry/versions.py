"""The model registry: every trained bundle is a version, kept under `models/<name>/<version>/`
with its `<version>.tar.gz` (what devices download), and a row with its metrics, training images,
parent, trigger, state and the gate's verdict. States: candidate, promoted, rejected, retired."""

from __future__ import annotations

import builtins
import logging
import time
from collections import Counter
from pathlib import Path

from cloud.store import Database
from cloud.store import models as model_store
from cloud.store.models import TrainingImage, Version
from common import bundle

log = logging.getLogger(__name__)


class RegistryError(Exception):
    """An unknown model or version, or a change the registry refuses."""


def check_models(loaded: bundle.Bundle) -> None:
    """The checks a device runs before its runtime reads a model, run before a bundle becomes a version:
    a model holding ops no inference needs (a file written at load, Python called) is refused here,
    never packed nor announced, whoever trained it."""
    from edge.backends import graph_check, onnx_ops, tflite_ops  # TensorFlow's protobufs: when a bundle comes in

    try:
        graph_check.check_bundle(loaded)
        tflite_ops.check(loaded.read(bundle.TFLITE), str(loaded.tflite_path))
        if bundle.ONNX in loaded.meta.files:  # bundles trained before ONNX export have none
            onnx_ops.check(loaded.read(bundle.ONNX), str(loaded.path / bundle.ONNX))
    except bundle.BundleError as exc:
        raise RegistryError(f"{loaded.meta.name} {loaded.meta.version} is refused: {exc}") from exc


class Registry:
    def __init__(self, db: Database, data_dir: Path) -> None:
        self.db = db
        self.root = data_dir / "models"

    def bundle_dir(self, name: str, version: str) -> Path:
        return self.root / name / version

    def archive(self, name: str, version: str) -> Path:
        return self.root / name / f"{version}.tar.gz"

    def add(self, path: Path, trigger: str | None = None, job_id: str | None = None) -> Version:
        """Register a trained bundle as a candidate; its parent is the version promoted now."""
        loaded = bundle.load(path)
        meta = loaded.meta
        if path.resolve() != self.bundle_dir(meta.name, meta.version).resolve():
            raise RegistryError(f"{path} is not at {self.bundle_dir(meta.name, meta.version)}")
        check_models(loaded)
        archive = bundle.pack(path, self.archive(meta.name, meta.version))
        images = bundle.training_images(loaded)
        counts = Counter(row["label"] for row in images if row["split"] == "train")
        parent = self.promoted(meta.name)
        model_store.add(
            self.db,
            name=meta.name,
            version=meta.version,
            created=time.time(),
            parent=parent.version if parent else None,
            trigger=trigger,
            job_id=job_id,
            sha256=bundle.sha256_file(archive),
            metrics_json=meta.metrics.model_dump_json(),
            label_counts=dict(sorted(counts.items())),
            images=[TrainingImage(r["sha256"], r["label"], r["split"]) for r in images],
        )
        log.info(
            "registered %s %s (%d images, parent %s)", meta.name, meta.version, len(images), parent and parent.version
        )
        return self.get(meta.name, meta.version)

    def get(self, name: str, version: str) -> Version:
        found = model_store.get(self.db, name, version)
        if found is None:
            raise RegistryError(f"no version {version!r} of model {name!r} in the registry")
        return found

    def list(self, name: str | None = None) -> list[Version]:
        return model_store.listing(self.db, name)

    def promoted(self, name: str) -> Version | None:
        return model_store.promoted(self.db, name)

    def images(self, name: str, version: str) -> builtins.list[TrainingImage]:
        """Every image the version was trained and tested on, by sha256."""
        return model_store.images(self.db, name, version)

    def decide(self, version: Version, promote: bool, gate: dict) -> None:
        """Record the gate's verdict on a candidate: rejected, or left for promotion."""
        state = "candidate" if promote else "rejected"
        model_store.set_gate(self.db, version.name, version.version, state, gate)

    def set_promoted(self, version: Version, groups: builtins.list[str] | None) -> Version | None:
        """Make `version` the promoted one (the previous one retires); returns the previous."""
        previous = self.promoted(version.name)
        model_store.promote(self.db, version.name, version.version, time.time(), groups)
        return previous

    def previous(self, name: str) -> Version | None:
        """The version promoted before the current one: what a rollback returns to."""
        return model_store.previous(self.db, name)

    def set_state(self, version: Version, state: str) -> None:
        model_store.set_state(self.db, version.name, version.version, state)
