"""One sweep, start to finish: every run, then each bundle's edge latency, then the table (terminal,
Markdown, JSON), the chart, the HParams and a `best` link to the winning bundle."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cloud.retrain.errors import RetrainError
from cloud.sweep import chart, grid, runner, summaries, table
from cloud.sweep.config import SweepConfig
from cloud.sweep.latency import edge_latency_ms

log = logging.getLogger(__name__)

SWEEP_YAML, TABLE_MD, CHART_PNG, RESULT_JSON, BEST = "sweep.yaml", "sweep.md", "sweep.png", "sweep.json", "best"


@dataclass
class SweepResult:
    output_dir: Path
    rows: list[table.Row]  # best first
    varying: list[str]
    backends: list[str]

    @property
    def best(self) -> table.Row | None:
        return next((r for r in self.rows if r.ok), None)

    def cells(self) -> tuple[list[str], list[list[str]]]:
        return table.cells(self.rows, self.varying, self.backends)

    def to_json(self) -> dict[str, Any]:
        best = self.best
        return {
            "output_dir": str(self.output_dir),
            "best": None if best is None else {"name": best.name, "bundle": best.bundle},
            "table": str(self.output_dir / TABLE_MD),
            "chart": str(self.output_dir / CHART_PNG),
            "logdir": str(self.output_dir / grid.LOGS_DIR),
            "runs": [dataclasses.asdict(r) for r in self.rows],
        }

    def report(self) -> str:
        best = self.best
        lines = [
            table.text(*self.cells()),
            "",
            f"best: {best.name} -> {self.output_dir / BEST}" if best else "best: none, every run failed",
            f"table {self.output_dir / TABLE_MD}, chart {self.output_dir / CHART_PNG}",
            f"tensorboard --logdir {self.output_dir / grid.LOGS_DIR}   (HParams tab: the runs side by side)",
        ]
        return "\n".join(lines)


def _prepare(cfg: SweepConfig) -> None:
    """An empty folder or an earlier sweep's, whose runs this one replaces; never anything else."""
    out = cfg.output_dir
    if out.exists() and any(out.iterdir()) and not (out / SWEEP_YAML).exists():
        raise RetrainError(f"{out} exists and is not a sweep's folder; refusing to overwrite it")
    if (out / BEST).is_symlink():
        (out / BEST).unlink()
    for stale in (grid.RUNS_DIR, grid.LOGS_DIR):
        shutil.rmtree(out / stale, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / SWEEP_YAML).write_text(yaml.safe_dump(cfg.model_dump(mode="json", exclude_none=True), sort_keys=False))


def _write(result: SweepResult) -> None:
    out = result.output_dir
    (out / TABLE_MD).write_text(table.markdown(*result.cells()) + "\n")
    (out / RESULT_JSON).write_text(json.dumps(result.to_json(), indent=2) + "\n")
    if best := result.best:
        os.symlink(Path(grid.RUNS_DIR) / best.name, out / BEST, target_is_directory=True)


def sweep(cfg: SweepConfig) -> SweepResult:
    runs = grid.expand(cfg)
    _prepare(cfg)
    log.info("sweep of %d runs into %s", len(runs), cfg.output_dir)
    outcomes = runner.execute(runs, cfg.jobs)
    rows = [
        table.row(o, edge_latency_ms(o.run.config.output_dir, cfg.edge_backends, cfg.edge_frames) if o.meta else {})
        for o in outcomes
    ]
    result = SweepResult(cfg.output_dir, table.ranked(rows), cfg.varying, cfg.edge_backends)
    logdir = cfg.output_dir / grid.LOGS_DIR
    summaries.write_hparams(logdir, cfg.axes, result.rows)
    chart.draw(result.rows, logdir, cfg.output_dir / CHART_PNG)
    _write(result)
    return result
