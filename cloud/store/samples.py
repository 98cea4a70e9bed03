"""The samples table: a row per picture a device sent (by content hash), its provenance, and a
person's decision on it (labelled or discarded, when, and where its training image went)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal, NamedTuple

from cloud.store.cursor import Cursor
from cloud.store.db import Database

Status = Literal["unlabelled", "labelled", "discarded"]


@dataclass(frozen=True)
class StoredSample:
    id: str
    device_id: str
    seq: int
    ts: float
    predicted: str
    score: float
    reason: str
    status: Status
    label: str | None
    labelled_at: float | None
    dataset_path: str | None  # relative to the data directory
    model_name: str
    model_version: str
    camera: str | None  # which of the device's cameras saw it; None: the device has one


class Placement(NamedTuple):
    """What a decision on a sample starts from: its model, and its training image if it has one."""

    model_name: str
    dataset_path: str | None


_SELECT = f"SELECT {', '.join(f.name for f in fields(StoredSample))} FROM samples"
_ORDER = {"unlabelled": "received", "labelled": "labelled_at", "discarded": "labelled_at"}  # arrived, or decided


def insert(
    cur: Cursor,
    *,
    sample_id: str,
    device_id: str,
    seq: int,
    ts: float,
    received: float,
    model_name: str,
    model_version: str,
    predicted: str,
    score: float,
    reason: str,
    size: int,
    camera: str | None,
) -> None:
    """A new sample, unlabelled; one already stored (the same picture) is left as it is."""
    cur.execute(
        """INSERT INTO samples
        (id, device_id, seq, ts, received, model_name, model_version, predicted, score, reason, bytes, camera)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING""",
        (sample_id, device_id, seq, ts, received, model_name, model_version, predicted, score, reason, size, camera),
    )


def lock(cur: Cursor, sample_id: str) -> Placement | None:
    """Take the row's write lock, then read it (None: no such sample). Two people deciding on the same
    sample are serialised (PostgreSQL locks the row, SQLite the database): the last one wins."""
    if not cur.execute("UPDATE samples SET status = status WHERE id = ?", (sample_id,)):
        return None
    cur.execute("SELECT model_name, dataset_path FROM samples WHERE id = ?", (sample_id,))
    return Placement(*cur.fetchall()[0])


def decide(cur: Cursor, sample_id: str, status: Status, label: str | None, at: float, dataset_path: str | None) -> None:
    cur.execute(
        "UPDATE samples SET status = ?, label = ?, labelled_at = ?, dataset_path = ? WHERE id = ?",
        (status, label, at, dataset_path, sample_id),
    )


def get(db: Database, sample_id: str) -> StoredSample | None:
    rows = db.query(f"{_SELECT} WHERE id = ?", (sample_id,))
    return StoredSample(*rows[0]) if rows else None


def with_status(db: Database, status: Status, limit: int, model: str | None = None) -> list[StoredSample]:
    """Newest first: by arrival for the unlabelled, by decision for the others; of one model, or of all."""
    where, params = ("status = ?", (status,)) if model is None else ("status = ? AND model_name = ?", (status, model))
    rows = db.query(f"{_SELECT} WHERE {where} ORDER BY {_ORDER[status]} DESC, id LIMIT ?", (*params, limit))
    return [StoredSample(*row) for row in rows]


def models_with(db: Database, status: Status) -> list[str]:
    """The models that have samples in this state, by name."""
    return sorted(row[0] for row in db.query("SELECT DISTINCT model_name FROM samples WHERE status = ?", (status,)))


def labelled_since(db: Database, dataset_prefix: str, since: float) -> int:
    """Samples labelled after `since` whose training image is under `dataset_prefix`."""
    rows = db.query(
        "SELECT COUNT(*) FROM samples WHERE status = 'labelled' AND dataset_path LIKE ? AND labelled_at > ?",
        (dataset_prefix + "%", since),
    )
    return rows[0][0]


def labelled_devices(db: Database, dataset_prefix: str) -> dict[str, str]:
    """{sample id: device id} of the samples whose training image is under `dataset_prefix`."""
    rows = db.query(
        "SELECT id, device_id FROM samples WHERE status = 'labelled' AND dataset_path LIKE ?", (dataset_prefix + "%",)
    )
    return dict(rows)


def expire(cur: Cursor, before: float, limit: int) -> list[str]:
    """Delete up to `limit` of the samples nobody labelled (unlabelled or discarded) that arrived before
    `before`, oldest first; returns their ids. A sample labelled meanwhile is kept: the outer condition
    is checked again on the row PostgreSQL locks."""
    cur.execute(
        """DELETE FROM samples WHERE status IN ('unlabelled', 'discarded') AND id IN (
            SELECT id FROM samples WHERE status IN ('unlabelled', 'discarded') AND received < ?
            ORDER BY received LIMIT ?
        ) RETURNING id""",
        (before, limit),
    )
    return [row[0] for row in cur.fetchall()]


def unlabelled_bytes(db: Database) -> dict[str, int]:
    """{device id: bytes of its unlabelled samples}: what the disk quotas count."""
    rows = db.query("SELECT device_id, SUM(bytes) FROM samples WHERE status = 'unlabelled' GROUP BY device_id")
    return {device_id: int(total) for device_id, total in rows}
