"""The aggregator's counters, rendered in the Prometheus text format for `GET /metrics`."""

from __future__ import annotations

import threading
from collections import Counter


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.lag_s = 0.0

    def add(self, **counts: int) -> None:
        with self._lock:
            self.counts.update(counts)

    def reject(self, reason: str) -> None:
        with self._lock:
            self.counts["rejected"] += 1
            self.rejected[reason] += 1

    def render(self) -> str:
        with self._lock:
            lines = []
            for name, help_text in (
                ("messages_in", "MQTT messages received"),
                ("stored", "predictions stored"),
                ("duplicates", "predictions received again and not stored twice"),
                ("samples_stored", "samples stored"),
                ("rejected", "messages rejected"),
                ("store_errors", "batches the database refused (retried, not acknowledged)"),
                ("samples_labelled", "samples a person labelled"),
                ("samples_discarded", "samples a person discarded"),
                ("samples_expired", "samples nobody labelled, deleted after --sample-retain-days"),
                ("too_old", "predictions captured before --retain-days ago, refused (their first copy may be gone)"),
                ("predictions_expired", "raw predictions deleted after --retain-days (SQLite)"),
                ("prediction_partitions_dropped", "days of raw predictions dropped after --retain-days (PostgreSQL)"),
            ):
                lines += [f"# HELP edgeloop_{name}_total {help_text}", f"# TYPE edgeloop_{name}_total counter"]
                lines.append(f"edgeloop_{name}_total {self.counts[name]}")
            lines += ["# HELP edgeloop_rejected_by_reason_total messages rejected, by reason"]
            lines += ["# TYPE edgeloop_rejected_by_reason_total counter"]
            lines += [
                f'edgeloop_rejected_by_reason_total{{reason="{r}"}} {n}' for r, n in sorted(self.rejected.items())
            ]
            lines += ["# HELP edgeloop_ingest_lag_seconds capture-to-commit time of the last stored prediction"]
            lines += ["# TYPE edgeloop_ingest_lag_seconds gauge", f"edgeloop_ingest_lag_seconds {self.lag_s:.3f}"]
            return "\n".join(lines) + "\n"
