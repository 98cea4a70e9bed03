"""`simulate-loop` from options to files: the images' features once, then either the loop for every
strategy and repeat (and the whole pool as reference) or the images-per-label curve on the seed;
the table, JSON and chart written to the output folder."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud.registry.gate import GatePolicy
from cloud.selection.strategies import DEFAULT_STRATEGY
from cloud.simulate import chart, report, sizes
from cloud.simulate.config import SimulateConfig
from cloud.simulate.features import Data, load
from cloud.simulate.loop import Simulation, representatives
from cloud.simulate.result import Curve, LoopResult, SizesResult
from cloud.simulate.training import Recipe

log = logging.getLogger(__name__)

TABLE, JSON, CHART = "table.txt", "simulation.json", "learning-curve.png"


@dataclass(frozen=True)
class Output:
    table: str
    json: dict[str, Any]
    dir: Path


def recipe(cfg: SimulateConfig) -> Recipe:
    return Recipe(cfg.how_many_training_steps, cfg.learning_rate, cfg.train_batch_size, cfg.field_weight)


def policy(cfg: SimulateConfig) -> GatePolicy:
    return GatePolicy(cfg.gate_margin, cfg.gate_field_images, cfg.gate_seed_margin, cfg.gate_alpha)


def seeds(cfg: SimulateConfig) -> list[int]:
    return [cfg.seed + r for r in range(cfg.repeats)]


def run_loop(cfg: SimulateConfig, data: Data) -> LoopResult:
    sim = Simulation(data, recipe(cfg), policy(cfg), cfg.similarity)
    runs: dict[str, list] = {s: [] for s in cfg.strategies}
    whole_pool: list[float] = []
    for seed in seeds(cfg):
        base = sim.base(seed)
        if cfg.full_pool:
            whole_pool.append(sim.field_accuracy(sim.whole_pool(seed)))
        for strategy in cfg.strategies:
            runs[strategy].append(sim.run(strategy, base, cfg.budget, cfg.round_size, seed))
            log.info("%s seed %d: field accuracy %s", strategy, seed, [r.promoted for r in runs[strategy][-1].rounds])
    return LoopResult(
        labels=data.labels,
        seed_train=len(sim.seed_train),
        pool_images=len(sim.pool.records),
        representatives=len(representatives(sim.pool.x, [], cfg.similarity)),
        eval_images=len(sim.eval.records),
        whole_pool_train=len(sim.pool.where("train")),
        whole_pool=whole_pool,
        curves=[Curve(s, runs[s]) for s in cfg.strategies],
    )


def run_sizes(cfg: SimulateConfig, data: Data) -> SizesResult:
    per_label = cfg.max_images_per_label or []
    rows = sizes.curve(data.seed, len(data.labels), per_label, recipe(cfg), seeds(cfg))
    return SizesResult(data.labels, len(data.seed.where("test")), rows)


def simulate(cfg: SimulateConfig) -> Output:
    data = load(cfg)
    out = cfg.output_dir
    out.mkdir(parents=True, exist_ok=True)
    config = cfg.model_dump(mode="json")
    if cfg.max_images_per_label:
        curve = run_sizes(cfg, data)
        table, result = report.sizes_table(curve), report.sizes_json(curve, config)
        chart.draw_sizes(curve, out / CHART)
    else:
        loop = run_loop(cfg, data)
        table, result = report.loop_table(loop, DEFAULT_STRATEGY), report.loop_json(loop, DEFAULT_STRATEGY, config)
        chart.draw_loop(loop, DEFAULT_STRATEGY, out / CHART)
    (out / TABLE).write_text(table + "\n")
    (out / JSON).write_text(json.dumps(result, indent=1))
    return Output(table, result, out)
