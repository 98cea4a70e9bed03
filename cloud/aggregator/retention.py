"""Retention of the samples nobody labelled: unlabelled and discarded samples, rows and pictures, are
deleted `retain_days` after they arrived, so a fleet's offers cannot fill the disk; labelled ones are
training data and stay. Deletion goes in batches, each its own short transaction, so the ingest
writer waits for one batch at most; a picture goes after its row (a crash in between leaves a file
without a row, never a row without its picture). Each pass also hands the quotas the store's own
count of every device's unlabelled bytes, which labels, discards and expiry lower."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cloud.aggregator.metrics import Metrics
from cloud.aggregator.writer import sample_path
from cloud.store import Database
from cloud.store import samples as sample_store

log = logging.getLogger(__name__)

DAY_S = 86400.0
INTERVAL_S = 300.0
BATCH = 500


class Retention:
    def __init__(
        self,
        db: Database,
        data_dir: Path,
        retain_days: float | None,
        metrics: Metrics,
        on_swept: Callable[[dict[str, int]], None] | None = None,
        interval_s: float = INTERVAL_S,
        batch: int = BATCH,
    ) -> None:
        self.db, self.data_dir = db, data_dir
        self.retain_days = retain_days
        self.metrics = metrics
        self.on_swept = on_swept
        self.interval_s = interval_s
        self.batch = batch
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sample-retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def sweep(self, now: float | None = None) -> int:
        """Delete what has expired by `now` (default: now); returns how many samples went."""
        expired = 0
        if self.retain_days is not None:
            before = (time.time() if now is None else now) - self.retain_days * DAY_S
            while not self._stop.is_set():
                with self.db.transaction() as cur:
                    ids = sample_store.expire(cur, before, self.batch)
                for sample_id in ids:
                    sample_path(self.data_dir, sample_id).unlink(missing_ok=True)
                expired += len(ids)
                if len(ids) < self.batch:
                    break
        if expired:
            self.metrics.add(samples_expired=expired)
            log.info("%d samples nobody labelled expired (older than %g days)", expired, self.retain_days)
        if self.on_swept is not None:
            self.on_swept(sample_store.unlabelled_bytes(self.db))
        return expired

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sweep()
            except Exception as exc:  # a database away: the next pass tries again
                log.warning("sample retention failed: %r", exc)
            self._stop.wait(self.interval_s)
