"""Training jobs in the store: at most one active (queued or running) job per model, so triggers
that fire while a model trains are coalesced into that job, across threads, processes and service
instances alike (the database's unique (model, active) decides, not a lock in one process)."""

from __future__ import annotations

import logging
import time
import uuid

from cloud.store import Database
from cloud.store import jobs as job_store
from cloud.store.jobs import Job

log = logging.getLogger(__name__)


class Jobs:
    def __init__(self, db: Database) -> None:
        self.db = db

    def request(self, model: str, reason: str) -> tuple[Job, bool]:
        """Queue a training of `model`, or join the one already queued or running.
        Returns the job and whether this request created it."""
        reason = " ".join(reason.split())  # one line: reasons are stored one per line
        for _ in range(5):
            job_id = uuid.uuid4().hex[:16]
            if job_store.queue(self.db, job_id, model, reason, time.time()):
                log.info("training of %s queued as job %s: %s", model, job_id, reason)
                return self.get(job_id), True
            joined = job_store.add_reason(self.db, model, reason)
            active = self.active(model)
            if joined and active is not None:
                log.info("training of %s already %s as job %s; coalesced: %s", model, active.state, active.id, reason)
                return active, False
        raise RuntimeError(f"could not queue a training of {model}")

    def get(self, job_id: str) -> Job:
        job = job_store.get(self.db, job_id)
        if job is None:
            raise KeyError(job_id)
        return job

    def active(self, model: str) -> Job | None:
        return job_store.active(self.db, model)

    def recent(self, limit: int = 20) -> list[Job]:
        return job_store.recent(self.db, limit)

    def last_started(self, model: str) -> float | None:
        """When the model's latest training began (queued time for one that has not started)."""
        return job_store.last_started(self.db, model)

    def claim(self) -> Job | None:
        """Take the oldest queued job; an instance that loses the race to another gets None."""
        job_id = job_store.oldest_queued(self.db)
        if job_id is None:
            return None
        return self.get(job_id) if job_store.start(self.db, job_id, time.time()) else None

    def finish(self, job: Job, ok: bool, version: str | None, message: str) -> None:
        state = "succeeded" if ok else "failed"
        job_store.finish(self.db, job.id, state, time.time(), version, message[:2000])
        log.info("job %s (%s) %s: %s", job.id, job.model, state, message)

    def fail_interrupted(self) -> None:
        """Jobs a killed service left running: the training process died with it."""
        job_store.fail_running(self.db, time.time(), "interrupted: the service stopped during the training")
