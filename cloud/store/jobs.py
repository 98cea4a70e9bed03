"""The jobs table: training jobs, queued, running and finished. `active` is 1 while a job is queued
or running and NULL after, so the unique (model, active) lets one job per model be active at a time,
whichever process or service instance asks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cloud.store.db import Database

_COLUMNS = "id, model, state, reasons, created, started, finished, version, message"


@dataclass(frozen=True)
class Job:
    id: str
    model: str
    state: str  # queued, running, succeeded, failed
    reasons: list[str]
    created: float
    started: float | None
    finished: float | None
    version: str | None
    message: str | None


def _job(row: Sequence[Any]) -> Job:
    job_id, model, state, reasons, *rest = row
    return Job(job_id, model, state, reasons.split("\n"), *rest)  # stored one per line


def queue(db: Database, job_id: str, model: str, reason: str, created: float) -> bool:
    """Queue a job; False when the model already has an active one (nothing is written then)."""
    return bool(
        db.execute(
            "INSERT INTO jobs (id, model, active, state, reasons, created) VALUES (?, ?, 1, 'queued', ?, ?) "
            "ON CONFLICT (model, active) DO NOTHING",
            (job_id, model, reason, created),
        )
    )


def add_reason(db: Database, model: str, reason: str) -> bool:
    """Append a reason (one line) to the model's active job in one statement, so none is lost to a race;
    False when it has none."""
    return bool(
        db.execute("UPDATE jobs SET reasons = reasons || ? WHERE model = ? AND active = 1", ("\n" + reason, model))
    )


def get(db: Database, job_id: str) -> Job | None:
    rows = db.query(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
    return _job(rows[0]) if rows else None


def active(db: Database, model: str) -> Job | None:
    rows = db.query(f"SELECT {_COLUMNS} FROM jobs WHERE model = ? AND active = 1", (model,))
    return _job(rows[0]) if rows else None


def recent(db: Database, limit: int) -> list[Job]:
    """The newest jobs first."""
    return [_job(r) for r in db.query(f"SELECT {_COLUMNS} FROM jobs ORDER BY created DESC LIMIT ?", (limit,))]


def last_started(db: Database, model: str) -> float | None:
    """When the model's latest job started (when it was queued, for one that has not); None: never."""
    return db.query("SELECT MAX(COALESCE(started, created)) FROM jobs WHERE model = ?", (model,))[0][0]


def oldest_queued(db: Database) -> str | None:
    """The id of the job queued first that is still waiting."""
    rows = db.query("SELECT id FROM jobs WHERE state = 'queued' ORDER BY created LIMIT 1")
    return rows[0][0] if rows else None


def start(db: Database, job_id: str, started: float) -> bool:
    """Mark a queued job running; False when it was not queued any more (another instance took it)."""
    return bool(
        db.execute(
            "UPDATE jobs SET state = 'running', started = ? WHERE id = ? AND state = 'queued'", (started, job_id)
        )
    )


def finish(db: Database, job_id: str, state: str, finished: float, version: str | None, message: str) -> None:
    db.execute(
        "UPDATE jobs SET state = ?, active = NULL, finished = ?, version = ?, message = ? WHERE id = ?",
        (state, finished, version, message, job_id),
    )


def fail_running(db: Database, finished: float, message: str) -> None:
    """Every running job fails with `message`."""
    db.execute(
        "UPDATE jobs SET state = 'failed', active = NULL, finished = ?, message = ? WHERE state = 'running'",
        (finished, message),
    )


def counts(db: Database) -> list[tuple[str, str, int]]:
    """How many jobs each model has in each state, as (model, state, count): one row per pair (jobs are few)."""
    return list(db.query("SELECT model, state, COUNT(*) FROM jobs GROUP BY model, state ORDER BY model, state"))
