"""The runs of a sweep: every combination of the swept values (or a seeded sample of them), each a
complete RetrainConfig with its own bundle and TensorBoard folders, named after what it varies."""

from __future__ import annotations

import itertools
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud.retrain.config import RetrainConfig
from cloud.sweep.config import SweepConfig
from common.options import build

log = logging.getLogger(__name__)

RUNS_DIR = "runs"
LOGS_DIR = "logs"
SHORT = {
    "learning_rate": "lr",
    "how_many_training_steps": "steps",
    "train_batch_size": "batch",
    "fine_tune_layers": "ft",
}


@dataclass(frozen=True)
class Run:
    name: str
    params: dict[str, Any]  # the swept options' values, device included
    config: RetrainConfig

    @property
    def device(self) -> str:
        return self.params["device"]

    @property
    def cache_key(self) -> tuple[str, str, Path]:
        """Runs with the same key share every bottleneck: the first one computes them."""
        return self.config.architecture, self.config.weights, self.config.bottleneck_dir


def run_name(params: dict[str, Any], varying: list[str]) -> str:
    parts = [f"{SHORT.get(key, '')}{params[key]}" for key in varying]
    return "-".join(parts) or "run"


def _combinations(cfg: SweepConfig) -> list[dict[str, Any]]:
    axes = cfg.axes
    combos = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]
    if cfg.max_runs is None or cfg.max_runs >= len(combos):
        return combos
    chosen = sorted(random.Random(cfg.seed).sample(range(len(combos)), cfg.max_runs))
    log.info("running %d of the %d combinations", len(chosen), len(combos))
    return [combos[i] for i in chosen]


def expand(cfg: SweepConfig) -> list[Run]:
    """Every run, checked as a RetrainConfig before any of them starts."""
    devices_apart = len(cfg.device) > 1  # each device then computes its own bottlenecks, to time them
    runs = []
    for params in _combinations(cfg):
        name = run_name(params, cfg.varying)
        bottleneck_dir = cfg.bottleneck_dir / params["device"] if devices_apart else cfg.bottleneck_dir
        retrain = {key: value for key, value in params.items() if key != "device"}
        where = {
            "output_dir": cfg.output_dir / RUNS_DIR / name,
            "summaries_dir": cfg.output_dir / LOGS_DIR / name,
            "bottleneck_dir": bottleneck_dir,
        }
        runs.append(Run(name, params, build(RetrainConfig, cfg.retrain_options, retrain, where)))
    return runs


def waves(runs: list[Run]) -> list[list[Run]]:
    """The first run of each bottleneck cache, then all the others: run side by side, the others
    find every bottleneck computed instead of computing the same ones at the same time."""
    firsts: dict[object, Run] = {}
    for run in runs:
        firsts.setdefault(run.cache_key, run)
    leaders = {run.name for run in firsts.values()}
    first_wave = [run for run in runs if run.name in leaders]
    return [wave for wave in (first_wave, [run for run in runs if run.name not in leaders]) if wave]
