"""The model registry: every trained bundle is a version, kept under `models/<name>/<version>/`
with its `<version>.tar.gz` (what devices download), and a row with its metrics, training images,
parent, trigger, state and the gate's verdict. States: candidate, promoted, rejected, retired."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from cloud.store import Database
from common import bundle

log = logging.getLogger(__name__)

COLUMNS = "name, version, state, created, parent, trigger, job_id, sha256, metrics, label_counts, gate, promoted_at, "
COLUMNS += "rollout_groups"


class RegistryError(Exception):
    """An unknown model or version, or a change the registry refuses."""


@dataclass(frozen=True)
class Version:
    name: str
    version: str
    state: str
    created: float
    parent: str | None
    trigger: str | None
    job_id: str | None
    sha256: str
    metrics: dict
    label_counts: dict[str, int]
    gate: dict | None
    promoted_at: float | None
    rollout_groups: list[str] | None

    @classmethod
    def from_row(cls, row: tuple) -> Version:
        values = list(row)
        for i in (8, 9, 10, 12):
            values[i] = json.loads(values[i]) if values[i] is not None else None
        return cls(*values)


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
        archive = bundle.pack(path, self.archive(meta.name, meta.version))
        images = bundle.training_images(loaded)
        counts = Counter(row["label"] for row in images if row["split"] == "train")
        parent = self.promoted(meta.name)
        with self.db.transaction() as cur:
            cur.execute(
                f"INSERT INTO models ({COLUMNS}) VALUES (?, ?, 'candidate', ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)",
                (meta.name, meta.version, time.time(), parent.version if parent else None, trigger, job_id,
                 bundle.sha256_file(archive), meta.metrics.model_dump_json(), json.dumps(dict(sorted(counts.items())))),
            )  # fmt: skip
            cur.executemany(
                "INSERT INTO model_images (name, version, sha256, label, split) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (name, version, sha256) DO NOTHING",
                [(meta.name, meta.version, r["sha256"], r["label"], r["split"]) for r in images],
            )
        log.info(
            "registered %s %s (%d images, parent %s)", meta.name, meta.version, len(images), parent and parent.version
        )
        return self.get(meta.name, meta.version)

    def get(self, name: str, version: str) -> Version:
        rows = self.db.query(f"SELECT {COLUMNS} FROM models WHERE name = ? AND version = ?", (name, version))
        if not rows:
            raise RegistryError(f"no version {version!r} of model {name!r} in the registry")
        return Version.from_row(rows[0])

    def list(self, name: str | None = None) -> list[Version]:
        where, params = ("WHERE name = ?", (name,)) if name else ("", ())
        rows = self.db.query(f"SELECT {COLUMNS} FROM models {where} ORDER BY name, created DESC", params)
        return [Version.from_row(r) for r in rows]

    def promoted(self, name: str) -> Version | None:
        rows = self.db.query(f"SELECT {COLUMNS} FROM models WHERE name = ? AND state = 'promoted'", (name,))
        return Version.from_row(rows[0]) if rows else None

    def images(self, name: str, version: str) -> list[tuple[str, str, str]]:
        """(sha256, label, split) of every image the version was trained and tested on."""
        return self.db.query(
            "SELECT sha256, label, split FROM model_images WHERE name = ? AND version = ? ORDER BY sha256",
            (name, version),
        )

    def decide(self, version: Version, promote: bool, gate: dict) -> None:
        """Record the gate's verdict on a candidate: rejected, or left for promotion."""
        state = "candidate" if promote else "rejected"
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE models SET state = ?, gate = ? WHERE name = ? AND version = ?",
                (state, json.dumps(gate), version.name, version.version),
            )

    def set_promoted(self, version: Version, groups: list[str] | None) -> Version | None:
        """Make `version` the promoted one (the previous one retires); returns the previous."""
        previous = self.promoted(version.name)
        with self.db.transaction() as cur:
            cur.execute("UPDATE models SET state = 'retired' WHERE name = ? AND state = 'promoted'", (version.name,))
            cur.execute(
                "UPDATE models SET state = 'promoted', promoted_at = ?, rollout_groups = ? "
                "WHERE name = ? AND version = ?",
                (time.time(), json.dumps(groups) if groups else None, version.name, version.version),
            )
        return previous

    def previous(self, name: str) -> Version | None:
        """The version promoted before the current one: what a rollback returns to."""
        rows = self.db.query(
            f"SELECT {COLUMNS} FROM models WHERE name = ? AND state = 'retired' AND promoted_at IS NOT NULL "
            "ORDER BY promoted_at DESC LIMIT 1",
            (name,),
        )
        return Version.from_row(rows[0]) if rows else None

    def set_state(self, version: Version, state: str) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE models SET state = ? WHERE name = ? AND version = ?", (state, version.name, version.version)
            )
