"""Test accuracy per slice: seed (images a person put in the dataset) against field (labelled
samples, what the cameras see), and the field per device where a device has enough test images.
One accuracy over a test split that is ~90% seed hides what the loop is for."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cloud.datasets import FIELD, SEED
from cloud.retrain import metrics
from cloud.retrain.dataset import ImageRecord
from cloud.retrain.errors import RetrainError
from common.bundle import SliceMetrics

log = logging.getLogger(__name__)

MIN_DEVICE_IMAGES = 10  # below this a device's accuracy moves 10 points per image: not worth reporting


def load_devices(path: Path | None) -> dict[str, str]:
    """{sample id: device id}, as the service writes it for a training from its samples table."""
    if path is None:
        return {}
    try:
        devices = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise RetrainError(f"cannot read the field devices file {path}: {exc}") from exc
    if not isinstance(devices, dict) or not all(isinstance(v, str) for v in devices.values()):
        raise RetrainError(f"{path} must hold a JSON object of sample id -> device id")
    return devices


def _accuracy(y: np.ndarray, predicted: np.ndarray, members: np.ndarray) -> SliceMetrics:
    return SliceMetrics(images=len(members), accuracy=metrics.accuracy(y[members], predicted[members]))


def by_slice(
    records: Sequence[ImageRecord], test: np.ndarray, y: np.ndarray, predicted: np.ndarray
) -> dict[str, SliceMetrics]:
    kinds = np.array([records[i].slice for i in test], dtype=object)
    return {kind: _accuracy(y, predicted, test[kinds == kind]) for kind in (SEED, FIELD)}


def by_device(
    records: Sequence[ImageRecord], test: np.ndarray, y: np.ndarray, predicted: np.ndarray, devices: dict[str, str]
) -> dict[str, SliceMetrics]:
    owner = np.array([devices.get(records[i].path.stem, "") if records[i].slice == FIELD else "" for i in test])
    result = {}
    for device in sorted(set(owner) - {""}):
        members = test[owner == device]
        if len(members) >= MIN_DEVICE_IMAGES:
            result[device] = _accuracy(y, predicted, members)
    return result
