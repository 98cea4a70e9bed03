"""Histograms the ingest keeps per device, exposed through prometheus_client's metric families. The
writer observes every stored prediction, up to 100,000 a second: a prometheus_client Histogram costs
about 1.5 µs an observation (its lock, its label lookup); here a committed batch is counted into its
buckets at once with numpy (about 0.5 µs a prediction for all four histograms), under the one lock the
caller holds."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.utils import floatToGoString


class Histogram:
    """Bucket counts and sums by one label's value ("" when unlabelled). Not thread-safe: its owner locks."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float], label: str | None = None) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = np.array(sorted(buckets), dtype=float)
        self.label = label
        self._les = [floatToGoString(b) for b in self.bounds] + ["+Inf"]
        self._series: dict[str, tuple[np.ndarray, list[float]]] = {}  # label value -> (counts by bucket, [sum])
        if label is None:  # one series, there from the start (at 0), as a labelled one is from its first value
            self._series[""] = self._empty()

    def _empty(self) -> tuple[np.ndarray, list[float]]:
        return np.zeros(len(self.bounds) + 1, dtype=np.int64), [0.0]

    def copy(self) -> Histogram:
        """For a scrape: the owner holds its lock for the copy (µs a series), not for `family` (~0.1 ms)."""
        copied = copy.copy(self)
        copied._series = {label: (counts.copy(), list(total)) for label, (counts, total) in self._series.items()}
        return copied

    def observe(self, values: np.ndarray, groups: np.ndarray, labels: Sequence[str]) -> None:
        """`values[i]` under `labels[groups[i]]`."""
        size = len(self.bounds) + 1
        bucket = np.searchsorted(self.bounds, values, side="left")  # le: a value on a bound is in its bucket
        counts = np.bincount(groups * size + bucket, minlength=len(labels) * size).reshape(len(labels), size)
        sums = np.bincount(groups, weights=values, minlength=len(labels))
        for i, label in enumerate(labels):
            series = self._series.get(label)
            if series is None:
                series = self._series[label] = self._empty()
            np.add(series[0], counts[i], out=series[0])
            series[1][0] += float(sums[i])

    def family(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(self.name, self.documentation, labels=[self.label] if self.label else None)
        for value, (counts, total) in sorted(self._series.items()):
            buckets = list(zip(self._les, np.cumsum(counts).tolist(), strict=True))
            family.add_metric([value] if self.label else [], buckets, total[0])
        return family
