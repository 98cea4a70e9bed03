"""The registry's tables: `models`, a row per trained version (its JSON columns decoded here), and
`model_images`, the exact images each version was trained, validated and tested on."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

from cloud.store.db import Database


@dataclass(frozen=True)
class Version:
    name: str
    version: str
    state: str  # candidate, promoted, rejected, retired
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


class TrainingImage(NamedTuple):
    sha256: str
    label: str
    split: str  # train, validation, test


_COLUMNS = ", ".join(f.name for f in fields(Version))
_JSON = {"metrics", "label_counts", "gate", "rollout_groups"}


def _version(row: Sequence[Any]) -> Version:
    values = {
        f.name: json.loads(v) if f.name in _JSON and v is not None else v
        for f, v in zip(fields(Version), row, strict=True)
    }
    return Version(**values)


def add(
    db: Database,
    *,
    name: str,
    version: str,
    created: float,
    parent: str | None,
    trigger: str | None,
    job_id: str | None,
    sha256: str,
    metrics_json: str,
    label_counts: Mapping[str, int],
    images: Sequence[TrainingImage],
) -> None:
    """A new candidate and its images, in one transaction."""
    with db.transaction() as cur:
        cur.execute(
            f"INSERT INTO models ({_COLUMNS}) VALUES (?, ?, 'candidate', ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)",
            (name, version, created, parent, trigger, job_id, sha256, metrics_json, json.dumps(label_counts)),
        )
        cur.executemany(
            "INSERT INTO model_images (name, version, sha256, label, split) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (name, version, sha256) DO NOTHING",
            [(name, version, *image) for image in images],
        )


def get(db: Database, name: str, version: str) -> Version | None:
    rows = db.query(f"SELECT {_COLUMNS} FROM models WHERE name = ? AND version = ?", (name, version))
    return _version(rows[0]) if rows else None


def listing(db: Database, name: str | None = None) -> list[Version]:
    """Every version (of `name`, or of every model), by name, newest first."""
    where, params = ("WHERE name = ?", (name,)) if name else ("", ())
    return [_version(r) for r in db.query(f"SELECT {_COLUMNS} FROM models {where} ORDER BY name, created DESC", params)]


def promoted(db: Database, name: str) -> Version | None:
    rows = db.query(f"SELECT {_COLUMNS} FROM models WHERE name = ? AND state = 'promoted'", (name,))
    return _version(rows[0]) if rows else None


def previous(db: Database, name: str) -> Version | None:
    """The retired version promoted last."""
    rows = db.query(
        f"SELECT {_COLUMNS} FROM models WHERE name = ? AND state = 'retired' AND promoted_at IS NOT NULL "
        "ORDER BY promoted_at DESC LIMIT 1",
        (name,),
    )
    return _version(rows[0]) if rows else None


def images(db: Database, name: str, version: str) -> list[TrainingImage]:
    rows = db.query(
        "SELECT sha256, label, split FROM model_images WHERE name = ? AND version = ? ORDER BY sha256", (name, version)
    )
    return [TrainingImage(*row) for row in rows]


def label_counts_json(db: Database, name: str, version: str) -> str | None:
    """The version's training images per label as stored (JSON text, for a caller that checks it), or
    None for a version not in the registry."""
    rows = db.query("SELECT label_counts FROM models WHERE name = ? AND version = ?", (name, version))
    return rows[0][0] if rows else None


def set_gate(db: Database, name: str, version: str, state: str, gate: Mapping[str, Any]) -> None:
    db.execute(
        "UPDATE models SET state = ?, gate = ? WHERE name = ? AND version = ?", (state, json.dumps(gate), name, version)
    )


def promote(db: Database, name: str, version: str, at: float, groups: Sequence[str] | None) -> None:
    """Make the version the promoted one (announced to `groups`, None or empty: the fleet); the one promoted
    before retires, in the same transaction."""
    with db.transaction() as cur:
        cur.execute("UPDATE models SET state = 'retired' WHERE name = ? AND state = 'promoted'", (name,))
        cur.execute(
            "UPDATE models SET state = 'promoted', promoted_at = ?, rollout_groups = ? WHERE name = ? AND version = ?",
            (at, json.dumps(list(groups)) if groups else None, name, version),
        )


def set_state(db: Database, name: str, version: str, state: str) -> None:
    db.execute("UPDATE models SET state = ? WHERE name = ? AND version = ?", (state, name, version))
