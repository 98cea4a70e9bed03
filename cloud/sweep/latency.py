"""Each bundle's edge latency on this machine, timed with the edge runtime's own backends, so the
figure is what a device of this kind would see."""

from __future__ import annotations

import logging
from pathlib import Path

from common import bundle
from edge.backends import BackendUnavailable
from edge.bench import model_fps
from edge.classifier import Classifier

log = logging.getLogger(__name__)


def edge_latency_ms(path: Path, names: list[str], frames: int) -> dict[str, float | None]:
    """Milliseconds per frame for each backend named; None for one that cannot run here."""
    loaded = bundle.load(path)
    result: dict[str, float | None] = {}
    for name in names:
        try:
            classifier = Classifier(loaded, name)
        except BackendUnavailable as exc:
            log.info("no %s latency for %s: %s", name, path.name, exc)
            result[name] = None
            continue
        result[name] = round(1000 / model_fps(classifier, frames), 3)
    return result
