"""Training jobs in the store: at most one active (queued or running) job per model, so triggers
that fire while a model trains are coalesced into that job, across threads, processes and service
instances alike (the database's unique (model, active) decides, not a lock in one process)."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from cloud.store import Database

log = logging.getLogger(__name__)

COLUMNS = "id, model, state, reasons, created, started, finished, version, message"


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

    @classmethod
    def from_row(cls, row: tuple) -> Job:
        return cls(row[0], row[1], row[2], row[3].split("\n"), *row[4:])


class Jobs:
    def __init__(self, db: Database) -> None:
        self.db = db

    def request(self, model: str, reason: str) -> tuple[Job, bool]:
        """Queue a training of `model`, or join the one already queued or running.
        Returns the job and whether this request created it."""
        reason = " ".join(reason.split())  # one line: reasons are stored one per line
        for _ in range(5):
            job_id = uuid.uuid4().hex[:16]
            with self.db.transaction() as cur:
                created = cur.execute(
                    "INSERT INTO jobs (id, model, active, state, reasons, created) VALUES (?, ?, 1, 'queued', ?, ?) "
                    "ON CONFLICT (model, active) DO NOTHING",
                    (job_id, model, reason, time.time()),
                )
            if created:
                log.info("training of %s queued as job %s: %s", model, job_id, reason)
                return self.get(job_id), True
            with self.db.transaction() as cur:  # appended in one statement: no reason lost to a race
                joined = cur.execute(
                    "UPDATE jobs SET reasons = reasons || ? WHERE model = ? AND active = 1", ("\n" + reason, model)
                )
            active = self.active(model)
            if joined and active is not None:
                log.info("training of %s already %s as job %s; coalesced: %s", model, active.state, active.id, reason)
                return active, False
        raise RuntimeError(f"could not queue a training of {model}")

    def get(self, job_id: str) -> Job:
        rows = self.db.query(f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            raise KeyError(job_id)
        return Job.from_row(rows[0])

    def active(self, model: str) -> Job | None:
        rows = self.db.query(f"SELECT {COLUMNS} FROM jobs WHERE model = ? AND active = 1", (model,))
        return Job.from_row(rows[0]) if rows else None

    def recent(self, limit: int = 20) -> list[Job]:
        rows = self.db.query(f"SELECT {COLUMNS} FROM jobs ORDER BY created DESC LIMIT ?", (limit,))
        return [Job.from_row(r) for r in rows]

    def last_started(self, model: str) -> float | None:
        """When the model's latest training began (queued time for one that has not started)."""
        row = self.db.query("SELECT MAX(COALESCE(started, created)) FROM jobs WHERE model = ?", (model,))[0]
        return row[0]

    def claim(self) -> Job | None:
        """Take the oldest queued job; an instance that loses the race to another gets None."""
        rows = self.db.query("SELECT id FROM jobs WHERE state = 'queued' ORDER BY created LIMIT 1")
        if not rows:
            return None
        with self.db.transaction() as cur:
            taken = cur.execute(
                "UPDATE jobs SET state = 'running', started = ? WHERE id = ? AND state = 'queued'",
                (time.time(), rows[0][0]),
            )
        return self.get(rows[0][0]) if taken else None

    def finish(self, job: Job, ok: bool, version: str | None, message: str) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE jobs SET state = ?, active = NULL, finished = ?, version = ?, message = ? WHERE id = ?",
                ("succeeded" if ok else "failed", time.time(), version, message[:2000], job.id),
            )
        log.info("job %s (%s) %s: %s", job.id, job.model, "succeeded" if ok else "failed", message)

    def fail_interrupted(self) -> None:
        """Jobs a killed service left running: the training process died with it."""
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE jobs SET state = 'failed', active = NULL, finished = ?, message = ? WHERE state = 'running'",
                (time.time(), "interrupted: the service stopped during the training"),
            )
