"""Label drift: how far the labels a device predicts have moved from the labels its model was trained
on. A camera whose scene changed, or a model that fails on it, shows here before anyone labels a
sample. The number is the Jensen–Shannon distance (base 2): 0 for the same distribution, 1 for
disjoint ones."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from cloud.aggregator.windows import DeviceWindow, fleet_windows
from cloud.store import Database
from cloud.store import devices as device_store
from cloud.store import models as model_store
from common import protocol

log = logging.getLogger(__name__)

DriftBasis = Literal["training_labels", "no_predictions", "model_not_registered", "no_training_labels"]
_LABEL_COUNTS = TypeAdapter(dict[str, Annotated[float, Field(ge=0, allow_inf_nan=False)]])


@dataclass(frozen=True)
class Drift:
    """`value` is None unless `basis` is "training_labels"; `model` is the version compared against."""

    value: float | None
    basis: DriftBasis
    model: protocol.ModelRef | None


def js_distance(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Jensen–Shannon distance of two label counts (normalised here); a label missing on one side is 0 there."""
    p_total, q_total = sum(p.values()), sum(q.values())
    divergence = 0.0
    for label in p.keys() | q.keys():
        a, b = p.get(label, 0) / p_total, q.get(label, 0) / q_total
        m = (a + b) / 2
        divergence += (a * math.log2(a / m) if a else 0.0) + (b * math.log2(b / m) if b else 0.0)
    return min(1.0, math.sqrt(max(0.0, divergence / 2)))  # rounding must not leave [0, 1]


def training_labels(db: Database, models: Iterable[protocol.ModelRef]) -> dict[protocol.ModelRef, dict[str, float]]:
    """The registry's training images per label of each version it holds (absent: not registered)."""
    found = {}
    for model in set(models):
        stored = model_store.label_counts_json(db, model.name, model.version)
        if stored is None:
            continue
        try:
            found[model] = _LABEL_COUNTS.validate_python(json.loads(stored))
        except ValueError:  # not JSON, or not {label: count}
            log.warning("model %s %s: label_counts is not {label: count}; no drift for it", model.name, model.version)
            found[model] = {}
    return found


def drift(window: DeviceWindow, training: Mapping[protocol.ModelRef, dict[str, float]]) -> Drift:
    """The window's predictions of the device's newest model version against that version's training labels."""
    model = window.latest_model
    if model is None:
        return Drift(None, "no_predictions", None)
    if model not in training:
        return Drift(None, "model_not_registered", model)
    if not any(training[model].values()):
        return Drift(None, "no_training_labels", model)
    return Drift(js_distance(window.versions[model], training[model]), "training_labels", model)


def fleet_drift(db: Database, windows: Iterable[DeviceWindow]) -> dict[str, Drift]:
    """Drift of each device, the registry read once per model version."""
    windows = list(windows)
    training = training_labels(db, (w.latest_model for w in windows if w.latest_model))
    return {w.device_id: drift(w, training) for w in windows}


def largest_drift(db: Database, model_name: str, window_s: float, min_predictions: int = 1) -> float | None:
    """The drift trigger's question: the largest drift among the devices running `model_name` now, counting
    only those with `min_predictions` of their version in the window (a handful of frames says nothing)."""
    running = [
        w
        for w in fleet_windows(db, device_store.ids(db), time.time() - window_s).values()
        if w.latest_model
        and w.latest_model.name == model_name
        and sum(w.versions[w.latest_model].values()) >= min_predictions
    ]
    return max((d.value for d in fleet_drift(db, running).values() if d.value is not None), default=None)
