"""What every inference backend offers: raw RGB uint8 batches in, class probabilities out."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from common.bundle import CACHE, Bundle


def engine_cache(bundle: Bundle, kind: str, *key: object) -> Path:
    """Where engines of `kind` built on this device for this bundle live, one folder per `key` (the GPU, the
    runtime's versions, the model's hash): an engine built for another GPU or runtime is never loaded."""
    digest = hashlib.sha256("|".join(map(str, key)).encode()).hexdigest()[:16]
    return bundle.path / CACHE / f"{kind}-{digest}"


class BackendUnavailable(RuntimeError):
    """A backend that cannot run on this machine (missing library, no GPU); says why."""


class Backend(ABC):
    name: str
    reads: str  # what of the bundle its runtime loads (a file or folder): checked again just before

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this backend cannot run on this machine, or None when it can."""
        return None

    @classmethod
    def notes(cls) -> list[str]:
        """What else `edge backends` says of it here: what it could run on, and what it lacks and why."""
        return []

    def __init__(self, bundle: Bundle) -> None:
        """Raises BundleError, before the runtime sees a byte, when the bundle's files are not what
        model.json lists (whoever built the Bundle, and whatever changed on disk since)."""
        bundle.verify(self.reads)
        self.bundle = bundle
        spec = bundle.meta.input
        self.input_shape = (spec.height, spec.width, 3)

    @abstractmethod
    def predict(self, batch: np.ndarray) -> np.ndarray:
        """`batch`: uint8 [N, height, width, 3] RGB. Returns float32 [N, labels] probabilities."""

    def auto_refusal(self, gpu: bool) -> str | None:
        """Why `auto` passes over this backend though it loaded (on a GPU machine: it runs on the CPU
        only), or None."""
        return None

    def warm_up(self) -> None:
        """Run once so the first real frame does not pay for graph building or allocation."""
        self.predict(np.zeros((1, *self.input_shape), np.uint8))
