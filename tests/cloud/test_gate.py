"""The gate's decision from per-image results: the field decides first when it has enough images and
the paired test sees a difference; otherwise the margin on all test images does."""

import numpy as np
import pytest

from cloud.registry import paired
from cloud.registry.gate import GatePolicy, decide


def results(right: int, total: int, offset: int = 0) -> np.ndarray:
    """`total` images of which `right` are right, starting at `offset` (so two models can disagree)."""
    out = np.zeros(total, bool)
    out[(np.arange(right) + offset) % total] = True
    return out


def test_exact_mcnemar_counts_disagreements() -> None:
    candidate = np.array([True] * 10 + [False] * 5)
    promoted = np.array([False] * 10 + [False] * 5)
    assert paired.compare(candidate, promoted) == (10, 0, 2 / 1024)
    assert paired.compare(promoted, candidate)[:2] == (0, 10)
    assert paired.compare(candidate, candidate) == (0, 0, 1.0)
    b, c, p = paired.compare(results(7, 20), results(7, 20, offset=7))  # 7 each way: no evidence
    assert (b, c, p) == (7, 7, 1.0)
    with pytest.raises(ValueError, match="shape"):
        paired.compare(candidate, promoted[:3])


def scenario(field_cand: int, field_prom: int, seed_cand: int, seed_prom: int, fields: int = 40, seeds: int = 400):
    """Per-image results of both models: field images first, then seed; the promoted model's right images
    overlap the candidate's as much as they can (the smallest disagreement that gives these accuracies)."""
    candidate = np.concatenate([results(field_cand, fields), results(seed_cand, seeds)])
    promoted = np.concatenate([results(field_prom, fields), results(seed_prom, seeds)])
    field = np.arange(fields + seeds) < fields
    return candidate, promoted, field


def test_significantly_better_on_the_field_and_a_little_worse_on_seed_is_promoted() -> None:
    # +30 points on 40 field images, -4 points on 400 seed images: worse over all 440 test images.
    candidate, promoted, field = scenario(field_cand=26, field_prom=14, seed_cand=344, seed_prom=360)
    assert candidate.mean() < promoted.mean()
    verdict = decide(candidate, promoted, field, GatePolicy())
    assert verdict["passed"] is True
    assert verdict["rule"] == "field"
    assert verdict["slices"]["field"] == {
        "images": 40, "candidate": 0.65, "promoted": 0.35, "b": 12, "c": 0, "p_value": round(2 / 2**12, 6)
    }  # fmt: skip
    assert verdict["slices"]["seed"] == {
        "images": 400, "candidate": 0.86, "promoted": 0.9, "b": 0, "c": 16, "p_value": round(2 / 2**16, 6)
    }  # fmt: skip
    # One image of a small seed slice is noise: it does not outweigh a significant gain on the field.
    candidate, promoted, field = scenario(field_cand=26, field_prom=14, seed_cand=12, seed_prom=13, seeds=14)
    verdict = decide(candidate, promoted, field, GatePolicy(seed_margin=0.05))
    assert verdict["passed"] is True
    assert "holds" in verdict["why"]
    # The same field gain giving up significantly more seed accuracy than allowed is rejected.
    candidate, promoted, field = scenario(field_cand=26, field_prom=14, seed_cand=320, seed_prom=360)
    verdict = decide(candidate, promoted, field, GatePolicy(seed_margin=0.05))
    assert verdict["passed"] is False
    assert verdict["rule"] == "field"


def test_significantly_worse_on_the_field_is_rejected_even_when_better_overall() -> None:
    candidate, promoted, field = scenario(field_cand=14, field_prom=26, seed_cand=390, seed_prom=360)
    assert candidate.mean() > promoted.mean()
    verdict = decide(candidate, promoted, field, GatePolicy(margin=0.05))
    assert verdict["passed"] is False
    assert verdict["rule"] == "field"
    assert "significantly worse" in verdict["why"]


def test_a_field_difference_within_noise_follows_the_margin() -> None:
    candidate, promoted, field = scenario(field_cand=22, field_prom=20, seed_cand=350, seed_prom=360)
    assert decide(candidate, promoted, field, GatePolicy())["slices"]["field"]["p_value"] > 0.05
    strict = decide(candidate, promoted, field, GatePolicy(margin=0.0))
    loose = decide(candidate, promoted, field, GatePolicy(margin=0.05))
    assert (strict["rule"], strict["passed"]) == ("margin", False)
    assert (loose["rule"], loose["passed"]) == ("margin", True)


def test_too_few_field_images_follow_the_margin_whatever_the_field_says() -> None:
    candidate, promoted, field = scenario(field_cand=10, field_prom=0, seed_cand=340, seed_prom=360, fields=10)
    verdict = decide(candidate, promoted, field, GatePolicy(field_images=30))
    assert (verdict["rule"], verdict["passed"]) == ("margin", False)
    assert "p_value" not in verdict["slices"]["field"]
    assert decide(candidate, promoted, field, GatePolicy(field_images=10))["rule"] == "field"
