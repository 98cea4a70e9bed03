"""The simulation as a table for people and as JSON for scripts (the bench reads it)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from cloud.simulate.result import LoopResult, SizesResult


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def loop_table(result: LoopResult, default: str) -> str:
    curves = result.curves
    width = max(11, *(len(c.strategy) + 2 for c in curves))
    lines = [
        f"field accuracy (%) on {result.eval_images} held-out field images, promoted model after each round "
        f"(candidate in brackets); mean of {len(result.whole_pool)} run(s)",
        f"pool: {result.pool_images} images, {result.representatives} after near-duplicate collapse; "
        f"seed: {result.seed_train} training images",
        "labels".rjust(6) + "".join(c.strategy.rjust(width + 8) for c in curves),
    ]
    for i, labels in enumerate(curves[0].labels):
        cells = []
        for c in curves:
            if i < len(c.labels):
                cells.append(f"{_pct(c.promoted[i])} ({_pct(c.candidate[i])})".rjust(width + 8))
            else:
                cells.append("".rjust(width + 8))
        lines.append(f"{labels:6d}" + "".join(cells))
    lines.append("rejected".rjust(6) + "".join(str(c.rejected).rjust(width + 8) for c in curves))
    lines.append(f"whole pool labelled ({result.whole_pool_train} field training images): {_pct(result.reference)}")
    for c in curves:
        at = result.at_budget(c.strategy)
        ratio = "-" if at["of_whole_pool"] is None else f"{at['of_whole_pool']:.3f}"
        over = (
            ""
            if at["over_random"] is None or c.strategy == "random"
            else f", {100 * at['over_random']:+.1f} points over random"
        )
        mark = " (default)" if c.strategy == default else ""
        lines.append(
            f"at {at['labels']} labels, {c.strategy}{mark}: {_pct(at['promoted'])} = {ratio} of the whole pool{over}"
        )
    return "\n".join(lines)


def loop_json(result: LoopResult, default: str, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "labels": result.labels,
        "default_strategy": default,
        "seed_train_images": result.seed_train,
        "pool_images": result.pool_images,
        "representatives": result.representatives,
        "eval_images": result.eval_images,
        "whole_pool": {"field_train_images": result.whole_pool_train, "accuracy": result.reference},
        "whole_pool_runs": result.whole_pool,
        "strategies": {
            c.strategy: {
                "labels": c.labels,
                "promoted": c.promoted,
                "candidate": c.candidate,
                "rejected": c.rejected,
                "at_budget": result.at_budget(c.strategy),
                "runs": [asdict(r) for r in c.runs],
            }
            for c in result.curves
        },
        "config": config,
    }


def sizes_table(result: SizesResult) -> str:
    lines = [
        f"seed test accuracy (%) on {result.test_images} images against training images per label",
        f"{'per label':>10}{'images':>8}{'accuracy':>10}",
    ]
    lines += [f"{s.max_per_label:>10}{s.train_images[0]:>8}{_pct(s.mean):>10}" for s in result.sizes]
    return "\n".join(lines)


def sizes_json(result: SizesResult, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "labels": result.labels,
        "test_images": result.test_images,
        "sizes": [asdict(s) | {"accuracy_mean": s.mean} for s in result.sizes],
        "config": config,
    }
