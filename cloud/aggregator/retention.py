"""Retention: what the store keeps, and for how long. Samples nobody labelled (unlabelled and discarded,
rows and pictures) are deleted `sample_days` after they arrived, so a fleet's offers cannot fill the disk;
labelled ones are training data and stay. Raw predictions go `prediction_days` after their capture, the
ten-second rollups with them (only a window's first minute reads those), the minute rollups after
`rollup_days`; the devices' counters are lifetime totals and stay. On PostgreSQL the raw rows go a day
partition at a time (cloud.store.partitions, made ahead here too); on SQLite, and for everything else,
deletion goes in batches, each its own short transaction followed by a pause as long as it took, so the
ingest writer waits for one batch at most and gets the store at least half the time. A picture goes after
its row (a crash in between leaves a file without a row, never a row without its picture). Each pass also
hands the quotas the store's own count of every device's unlabelled bytes, which labels, discards and
expiry lower.

The writer refuses predictions captured before `prediction_days` ago (writer.Batch.refuse_older): one
whose raw copy may be gone could not be told from a new one, and would be counted twice. Raw rows are
deleted only `GRACE_S` after that, so a batch whose cutoff was taken just before a pass cannot land
among rows the pass deletes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from cloud.aggregator.metrics import Metrics
from cloud.aggregator.writer import sample_path
from cloud.store import Database, partitions, rollups
from cloud.store import devices as device_store
from cloud.store import predictions as prediction_store
from cloud.store import samples as sample_store
from cloud.store.cursor import Cursor

log = logging.getLogger(__name__)

DAY_S = 86400.0
INTERVAL_S = 300.0
BATCH = 500
PREDICTION_BATCH = 1000  # raw rows per transaction on SQLite: ~20 ms (5,000: ~140 ms of ingest stalled at worst)
GRACE_S = 3600.0
AHEAD_DAYS = 3  # PostgreSQL: partitions made this many days ahead of today
ROLLUP_SPAN = {rollups.TEN: 360, rollups.MINUTE: 1440}  # buckets per transaction: an hour of tens, a day of minutes
MIN_PAUSE_S = 0.001


@dataclass(frozen=True)
class PredictionRetention:
    """Days raw predictions and minute rollups are kept after their capture (None: forever)."""

    prediction_days: float | None = None
    rollup_days: float | None = None

    def oldest_accepted(self, now: float) -> float | None:
        """The capture time before which the writer refuses a prediction (None: it refuses none)."""
        return None if self.prediction_days is None else now - self.prediction_days * DAY_S


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
        predictions: PredictionRetention | None = None,
        prediction_batch: int = PREDICTION_BATCH,
    ) -> None:
        self.db, self.data_dir = db, data_dir
        self.retain_days = retain_days
        self.predictions = predictions or PredictionRetention()
        self.prediction_batch = prediction_batch
        self.metrics = metrics
        self.on_swept = on_swept
        self.interval_s = interval_s
        self.batch = batch
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)

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

    def expire_predictions(self, now: float | None = None) -> int:
        """Delete the raw predictions and rollups that have expired by `now` (default: now), and on PostgreSQL
        make the partitions of the days to come; returns the raw rows deleted (SQLite)."""
        now = time.time() if now is None else now
        policy, partitioned = self.predictions, self.db.dialect == "postgresql"
        oldest = policy.oldest_accepted(now)
        raw = None if oldest is None else oldest - GRACE_S
        if partitioned:  # from the oldest day still kept: the days the service was down for too
            partitions.create(self.db, partitions.day(now if raw is None else raw), partitions.day(now) + AHEAD_DAYS)
            if raw is not None:
                self.metrics.add(prediction_partitions_dropped=len(partitions.drop_before(self.db, raw)))
        expired = 0
        minutes = None if policy.rollup_days is None else now - policy.rollup_days * DAY_S - GRACE_S
        for device_id in device_store.ids(self.db) if raw is not None or minutes is not None else []:
            if raw is not None and not partitioned:
                expired += self._batches(partial(prediction_store.delete_before, device_id=device_id, before=raw,
                                                 limit=self.prediction_batch))  # fmt: skip
            for width, before in ((rollups.TEN, raw), (rollups.MINUTE, minutes)):
                if before is not None:
                    self._batches(partial(rollups.delete_before, device_id=device_id, width=width,
                                          before=rollups.bucket(before, width), span=ROLLUP_SPAN[width]))  # fmt: skip
        if expired:
            self.metrics.add(predictions_expired=expired)
            log.info("%d predictions expired (older than %g days)", expired, policy.prediction_days)
        return expired

    def _batches(self, step: Callable[[Cursor], int]) -> int:
        """Run `step` in short transactions until it deletes nothing; after each, leave the store to the
        writer as long as the step held it."""
        deleted = 0
        while not self._stop.is_set():
            started = time.monotonic()
            with self.db.transaction() as cur:
                n = step(cur)
            if not n:
                break
            deleted += n
            self._stop.wait(max(time.monotonic() - started, MIN_PAUSE_S))
        return deleted

    def _run(self) -> None:
        while not self._stop.is_set():
            for task in (self.sweep, self.expire_predictions):
                try:
                    task()
                except Exception as exc:  # a database away: the next pass tries again
                    log.warning("retention failed: %r", exc)
            self._stop.wait(self.interval_s)
