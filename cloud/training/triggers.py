"""What starts a training, each configurable and each logged with its reason: a model never trained,
a period, enough new labels, the fleet drifting (low confidence, or its label distribution away
from the training one), and manual requests (HTTP, MQTT, `python -m cloud retrain-now`). Every
trigger only asks the job queue, which coalesces what fires during a training into that training."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cloud.datasets import dataset_prefix, models
from cloud.store import Database
from cloud.store import samples as sample_store
from cloud.store import windows as window_store
from cloud.training.jobs import Jobs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TriggerPolicy:
    interval_s: float = 30.0
    initial: bool = True
    every_h: float | None = None
    after_labels: int | None = None
    min_mean_confidence: float | None = None
    max_label_drift: float | None = None
    window_s: float = 3600.0
    min_predictions: int = 100  # fewer in the window says nothing about drift


class Triggers(threading.Thread):
    def __init__(
        self,
        db: Database,
        jobs: Jobs,
        data_dir: Path,
        policy: TriggerPolicy,
        label_drift: Callable[[str, float], float | None] | None = None,
    ) -> None:
        super().__init__(name="triggers", daemon=True)
        self.db, self.jobs, self.data_dir, self.policy = db, jobs, data_dir, policy
        self.label_drift = label_drift  # (model, window_s) -> the fleet's largest drift, or None
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=10)

    def run(self) -> None:
        while not self._stopping.wait(self.policy.interval_s):
            for model in models(self.data_dir):
                try:
                    reason = self.reason(model)
                except Exception as exc:  # the database away: the next round tries again
                    log.warning("cannot evaluate the triggers of %s: %r", model, exc)
                    continue
                if reason:
                    self.jobs.request(model, reason)

    def reason(self, model: str) -> str | None:
        """Why `model` should be trained now, or None."""
        if self.jobs.active(model) is not None:
            return None
        p, now = self.policy, time.time()
        last = self.jobs.last_started(model)
        if last is None:
            return "initial: the model has never been trained" if p.initial else None
        if p.every_h is not None and now - last >= p.every_h * 3600:
            return f"periodic: last training {(now - last) / 3600:.1f} h ago (every {p.every_h} h)"
        if p.after_labels is not None:
            fresh = sample_store.labelled_since(self.db, dataset_prefix(model), last)
            if fresh >= p.after_labels:
                return f"data: {fresh} new labelled samples (threshold {p.after_labels})"
        return self._drift(model, now) if now - last >= p.window_s else None  # one drift training per window

    def _drift(self, model: str, now: float) -> str | None:
        p = self.policy
        if p.min_mean_confidence is not None:
            fleet = window_store.confidence(self.db, model, now - p.window_s)
            if fleet.predictions >= p.min_predictions and fleet.mean is not None and fleet.mean < p.min_mean_confidence:
                return (
                    f"drift: mean confidence {fleet.mean:.3f} over {fleet.predictions} predictions "
                    f"(threshold {p.min_mean_confidence})"
                )
        if p.max_label_drift is not None and self.label_drift is not None:
            drift = self.label_drift(model, p.window_s)
            if drift is not None and drift > p.max_label_drift:
                return f"drift: label distribution drift {drift:.3f} (threshold {p.max_label_drift})"
        return None
