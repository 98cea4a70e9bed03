"""The promotion gate: a candidate replaces the promoted version only if it is at least as good on
the current test split of the model's dataset (less a margin), both measured the same way, with
the edge's own TFLite backend. Judging both on today's test images, not on the numbers each was
trained with, keeps a candidate trained on bad labels from winning on its own bad test set."""

from __future__ import annotations

import logging
from pathlib import Path

from cloud.retrain.dataset import Splits, scan
from common import bundle, images
from edge.classifier import Classifier

log = logging.getLogger(__name__)

BATCH = 32


def accuracy(model: bundle.Bundle, paths: list[Path], labels: list[str]) -> float:
    """Top-1 accuracy of `model` on these images; a label it does not know counts as wrong."""
    classifier = Classifier(model, "tflite")
    correct = 0
    for start in range(0, len(paths), BATCH):
        frames = [images.read_rgb(p) for p in paths[start : start + BATCH]]
        predicted = classifier.probabilities(frames).argmax(axis=1)
        truth = labels[start : start + BATCH]
        correct += sum(classifier.labels[i] == t for i, t in zip(predicted, truth, strict=True))
    return correct / len(paths) if paths else 0.0


def judge(candidate: Path, promoted: Path | None, dataset_dir: Path, margin: float) -> dict:
    """The comparison, as recorded in the registry: `passed` decides."""
    cand = bundle.load(candidate)
    training = cand.meta.training
    dataset = scan(dataset_dir, Splits.of(training))
    test = [dataset.records[i] for i in dataset.indices("test")]
    paths, labels = [r.path for r in test], [dataset.labels[r.label] for r in test]
    verdict: dict = {"test_images": len(test), "margin": margin}
    verdict["candidate_accuracy"] = round(accuracy(cand, paths, labels), 4)
    if promoted is None:
        verdict |= {"promoted_accuracy": None, "passed": True, "why": "no promoted version yet"}
    else:
        verdict["promoted_accuracy"] = round(accuracy(bundle.load(promoted), paths, labels), 4)
        verdict["passed"] = bool(verdict["candidate_accuracy"] >= verdict["promoted_accuracy"] - margin)
        verdict["why"] = (
            f"candidate {verdict['candidate_accuracy']:.3f} vs promoted {verdict['promoted_accuracy']:.3f} "
            f"on {len(test)} current test images (margin {margin})"
        )
    log.info("gate for %s %s: %s", cand.meta.name, cand.meta.version, verdict["why"])
    return verdict
