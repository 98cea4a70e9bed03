"""A version's test accuracy per slice, lifted out of its metrics for the readers (the API, the
CLI): seed and field side by side is what says whether the loop helps where the model is deployed.
Versions trained before slices existed have none: every figure is then None."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cloud.datasets import FIELD, SEED

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SliceFigures:
    seed_accuracy: float | None  # on the seed test images (put in the dataset by a person)
    field_accuracy: float | None  # on the field test images (labelled samples); None: no field test images
    field_test_images: int | None  # None: the version reports no slices


def slice_figures(metrics: Mapping[str, Any]) -> SliceFigures:
    slices = metrics.get("slices") or {}
    seed, field = slices.get(SEED) or {}, slices.get(FIELD) or {}
    return SliceFigures(seed.get("accuracy"), field.get("accuracy"), field.get("images"))
