"""The promotion gate: a candidate replaces the promoted version only if it is better where the
model is deployed, or at least as good everywhere. Both are measured the same way, with the edge's
own TFLite backend, on the current test split of the model's dataset, not on the numbers each was
trained with: a candidate trained on bad labels cannot win on its own bad test set.

The test split is mostly seed images, so one accuracy over it cannot see the field. With enough
field test images the field decides first, by a paired test (`paired.compare`): a candidate
significantly better there is promoted unless it gives up more than `seed_margin` on the seed
slice; one significantly worse is rejected. A difference within noise, or too few field images,
falls back to the margin rule on all test images."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cloud.datasets import FIELD, SEED
from cloud.registry import paired
from cloud.retrain.dataset import Splits, scan
from common import bundle
from edge.classifier import Classifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GatePolicy:
    margin: float = 0.0  # on all test images: a candidate may be this much less accurate and pass
    field_images: int = 30  # field test images needed before the field decides
    seed_margin: float = 0.05  # seed accuracy a candidate significantly better on the field may give up
    alpha: float = 0.05  # significance of the paired test on the field


def correct(model: bundle.Bundle, paths: list[Path], labels: list[str]) -> np.ndarray:
    """Whether `model` gets each image right; a label it does not know counts as wrong."""
    classifier = Classifier(model, "tflite")
    predicted = classifier.probabilities_of_files(paths).argmax(axis=1)
    return np.array([classifier.labels[i] == t for i, t in zip(predicted, labels, strict=True)], bool)


def _accuracy(right: np.ndarray) -> float | None:
    return round(float(right.mean()), 4) if len(right) else None


def _slice(candidate: np.ndarray, promoted: np.ndarray) -> dict:
    """A slice's numbers: an empty `promoted` (a first version) records None for it."""
    return {"images": len(candidate), "candidate": _accuracy(candidate), "promoted": _accuracy(promoted)}


def _seed_holds(candidate: np.ndarray, promoted: np.ndarray, numbers: dict, policy: GatePolicy) -> tuple[bool, str]:
    """Whether a field gain may cost what it costs on the seed slice: it is refused only for a loss
    larger than `seed_margin` that the paired test also finds significant. The seed test slice
    can be small, and one image must not outweigh a significant gain on the field."""
    b, c, p = paired.compare(candidate, promoted)
    numbers |= {"b": b, "c": c, "p_value": round(p, 6)}
    drop = (numbers["promoted"] or 0.0) - (numbers["candidate"] or 0.0)
    lost = drop > policy.seed_margin and p < policy.alpha and c > b
    why = f"seed {numbers['candidate']} vs {numbers['promoted']}, p={p:.3g}"
    return not lost, f"{why}: {'significantly worse' if lost else 'holds'} (may drop {policy.seed_margin})"


def decide(candidate: np.ndarray, promoted: np.ndarray, field: np.ndarray, policy: GatePolicy) -> dict:
    """The verdict from per-image results (True: right) of both models on the same test images."""
    seed = ~field
    slices = {SEED: _slice(candidate[seed], promoted[seed]), FIELD: _slice(candidate[field], promoted[field])}
    verdict: dict = {"slices": slices, "margin": policy.margin, "candidate_accuracy": _accuracy(candidate)}
    verdict["promoted_accuracy"] = _accuracy(promoted)
    if field.sum() >= policy.field_images:
        b, c, p = paired.compare(candidate[field], promoted[field])
        slices[FIELD] |= {"b": b, "c": c, "p_value": round(p, 6)}
        field_why = f"field {slices[FIELD]['candidate']:.3f} vs {slices[FIELD]['promoted']:.3f}, p={p:.3g}"
        if p < policy.alpha and c > b:
            return verdict | {"rule": "field", "passed": False, "why": f"significantly worse on the field: {field_why}"}
        if p < policy.alpha:
            passed, seed_why = _seed_holds(candidate[seed], promoted[seed], slices[SEED], policy)
            why = f"significantly better on the field: {field_why}; {seed_why}"
            return verdict | {"rule": "field", "passed": passed, "why": why}
    cand, prom = verdict["candidate_accuracy"] or 0.0, verdict["promoted_accuracy"] or 0.0
    passed = cand >= prom - policy.margin
    why = f"candidate {cand:.3f} vs promoted {prom:.3f} on {len(candidate)} test images (margin {policy.margin})"
    if field.any():
        why += f"; field within noise or under {policy.field_images} images ({int(field.sum())})"
    return verdict | {"rule": "margin", "passed": bool(passed), "why": why}


def judge(candidate: Path, promoted: Path | None, dataset_dir: Path, policy: GatePolicy) -> dict:
    """The comparison, as recorded in the registry: `passed` decides, `slices` holds the numbers."""
    cand = bundle.load(candidate)
    dataset = scan(dataset_dir, Splits.of(cand.meta.training))
    test = [dataset.records[i] for i in dataset.indices("test")]
    paths, labels = [r.path for r in test], [dataset.labels[r.label] for r in test]
    field = np.array([r.slice == FIELD for r in test], bool)
    right = correct(cand, paths, labels)
    if promoted is None:
        none = right[:0]
        verdict: dict = {"slices": {SEED: _slice(right[~field], none), FIELD: _slice(right[field], none)}}
        verdict |= {"candidate_accuracy": _accuracy(right), "promoted_accuracy": None, "margin": policy.margin}
        verdict |= {"rule": "first", "passed": True, "why": "no promoted version yet"}
    else:
        verdict = decide(right, correct(bundle.load(promoted), paths, labels), field, policy)
    verdict["test_images"] = len(test)
    log.info("gate for %s %s: %s", cand.meta.name, cand.meta.version, verdict["why"])
    return verdict
