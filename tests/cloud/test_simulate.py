"""The field-loop simulation: the selection strategies' properties on points whose answer is known,
near-duplicate collapse, the gate step, and `simulate-loop` end to end on images the tests make."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cloud.cli import main
from cloud.registry.gate import GatePolicy
from cloud.retrain.head import new_head
from cloud.selection.duplicates import collapse
from cloud.selection.strategies import STRATEGIES, margin, select
from cloud.simulate.loop import gate_step
from cloud.simulate.training import Model
from tests.support.charts import assert_real_chart
from tests.support.data import write_dataset

CENTRES = np.array([[10.0, 0, 0, 0], [0, 10, 0, 0], [0, 0, 10, 0], [0, 0, 0, 10]])


def clusters(sizes: list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points around well separated centres, and the cluster of each."""
    rng = np.random.default_rng(seed)
    which = np.repeat(np.arange(len(sizes)), sizes)
    return CENTRES[which] + rng.normal(0, 0.5, (len(which), 4)), which


def confident(n: int, classes: int = 3, seed: int = 0) -> np.ndarray:
    """Probabilities of a model sure of every image."""
    p = np.full((n, classes), 0.01)
    p[np.arange(n), np.random.default_rng(seed).integers(0, classes, n)] = 1 - 0.01 * (classes - 1)
    return p


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_returns_k_distinct_pool_indices(strategy: str) -> None:
    x, _ = clusters([30, 20, 10, 5])
    p = np.random.default_rng(1).dirichlet(np.ones(3), len(x))
    labelled = x[:3] + 0.1
    chosen = select(strategy, 12, x, p, labelled, seed=3)
    assert len(chosen) == 12
    assert len(set(chosen.tolist())) == 12
    assert chosen.min() >= 0
    assert chosen.max() < len(x)
    assert len(select(strategy, 100, x[:7], p[:7])) == 7  # never more than the pool holds


def test_uncertainty_picks_the_smallest_margins() -> None:
    x, _ = clusters([20, 20])
    p = np.random.default_rng(2).dirichlet(np.ones(4), len(x))
    chosen = select("uncertainty", 5, x, p)
    assert set(chosen.tolist()) == set(np.argsort(margin(p))[:5].tolist())


def test_diversity_covers_every_cluster_before_a_second_pick_in_one() -> None:
    x, which = clusters([40, 25, 10, 4])
    chosen = select("diversity", 4, x, confident(len(x)), seed=5)
    assert sorted(which[chosen].tolist()) == [0, 1, 2, 3]


def test_diversity_skips_clusters_already_labelled() -> None:
    x, which = clusters([40, 25, 10, 4])
    labelled = CENTRES[[0, 1]] + 0.1
    chosen = select("diversity", 2, x, confident(len(x)), labelled, seed=5)
    assert sorted(which[chosen].tolist()) == [2, 3]


def test_hybrid_picks_uncertain_images_from_different_clusters() -> None:
    """k-means++ draws at random: the property holds for nearly every seed, not for each."""
    x, which = clusters([30, 30, 30])
    p = confident(len(x))
    uncertain = np.array([1, 2, 3, 31, 32, 33, 61, 62, 63])  # a few torn between two labels in each cluster
    p[uncertain] = [0.45, 0.45, 0.1]
    picks = [select("hybrid", 3, x, p, seed=seed) for seed in range(40)]
    good = [set(c.tolist()) <= set(uncertain.tolist()) and sorted(which[c].tolist()) == [0, 1, 2] for c in picks]
    assert sum(good) >= 36
    assert all(set(c.tolist()) & set(uncertain.tolist()) for c in picks)


def test_collapse_groups_near_duplicates_and_keeps_distinct_images_apart() -> None:
    rng = np.random.default_rng(4)
    scenes = rng.uniform(0, 1, (30, 64))  # distinct images: non-negative, like pooled ReLU features
    frames = np.repeat(scenes, 3, axis=0) + rng.normal(0, 0.02, (90, 64))  # three frames of each
    representative = collapse(frames, similarity=0.95)
    assert (representative == np.repeat(np.arange(0, 90, 3), 3)).all()
    assert len(set(collapse(scenes, similarity=0.95).tolist())) == 30


def model(kernel: np.ndarray) -> Model:
    head = new_head(kernel.shape[0], kernel.shape[1], seed=0)
    head.kernel.assign(kernel.astype(np.float32))
    return Model(head)


def test_the_gate_step_rejects_a_worse_candidate_and_promotes_a_better_one() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 160)
    x = np.eye(3, dtype=np.float32)[y] + rng.normal(0, 0.3, (160, 3)).astype(np.float32)
    field = np.arange(160) >= 100  # 100 seed test images, 60 field ones
    right, wrong = model(np.eye(3)), model(np.eye(3)[[1, 2, 0]])
    worse = gate_step(wrong, right, x, y, field, GatePolicy())
    assert not worse["passed"]
    assert worse["rule"] == "field"
    assert worse["slices"]["field"]["p_value"] < 0.05
    better = gate_step(right, wrong, x, y, field, GatePolicy())
    assert better["passed"]


def folders(root: Path) -> dict[str, Path]:
    """A seed, a pool and held-out images of the test colours, each drawn with its own noise."""
    return {
        "seed_dir": write_dataset(root / "seed", per_label=20, seed=0),
        "pool_dir": write_dataset(root / "pool", per_label=24, seed=1),
        "eval_dir": write_dataset(root / "eval", per_label=10, seed=2),
    }


def simulate(tiny_flags: dict[str, object], tmp_path: Path, *flags: str) -> int:
    options = {**tiny_flags, **folders(tmp_path / "images"), "bottleneck_dir": tmp_path / "bn"}
    argv = [item for key, value in options.items() for item in (f"--{key.replace('_', '-')}", str(value))]
    return main(["simulate-loop", *argv, "--output-dir", str(tmp_path / "out"), *flags])


def test_simulate_loop_writes_the_learning_curves_as_table_json_and_chart(
    tiny_flags: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--strategies", "random,hybrid", "--round-size", "10", "--budget", "30", "--gate-field-images", "5"]
    assert simulate(tiny_flags, tmp_path, *flags) == 0
    table = capsys.readouterr().out
    assert "whole pool labelled" in table
    assert "at 30 labels, hybrid" in table
    assert (tmp_path / "out" / "table.txt").read_text().strip() == table.strip()
    result = json.loads((tmp_path / "out" / "simulation.json").read_text())
    assert result["pool_images"] == 72
    assert result["eval_images"] == 30
    assert set(result["strategies"]) == {"random", "hybrid"}
    for curve in result["strategies"].values():
        assert curve["labels"] == [0, 10, 20, 30]
        assert len(curve["promoted"]) == len(curve["candidate"]) == 4
        assert all(0 <= a <= 1 for a in curve["promoted"])
        rounds = curve["runs"][0]["rounds"]
        assert [r["field_train"] + r["field_test"] for r in rounds] == [10, 20, 30]
    assert 0 < result["whole_pool"]["accuracy"] <= 1
    assert result["strategies"]["random"]["at_budget"]["over_random"] == 0
    assert_real_chart(tmp_path / "out" / "learning-curve.png", (800, 500))


def test_images_per_label_mode_measures_the_seed_alone(
    tiny_flags: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert simulate(tiny_flags, tmp_path, "--max-images-per-label", "2,8", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert [s["max_per_label"] for s in result["sizes"]] == [2, 8]
    assert [s["train_images"] for s in result["sizes"]] == [[6], [24]]
    assert result["test_images"] > 0
    assert_real_chart(tmp_path / "out" / "learning-curve.png", (800, 500))
