"""The sweep's result: one row per run with what it cost and what it reached, best first, printed
as a terminal table or as Markdown (the same columns)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from cloud.sweep.runner import Outcome

log = logging.getLogger(__name__)


@dataclass
class Row:
    name: str
    params: dict[str, Any]  # the swept options' values, device included
    error: str | None = None
    bundle: str | None = None
    test_accuracy: float | None = None
    validation_accuracy: float | None = None
    bottleneck_s: float | None = None
    bottlenecks_computed: int | None = None
    bottlenecks_cached: int | None = None
    train_s: float | None = None
    images_per_s: float | None = None  # training images through the new layer per second: steps x batch / train_s
    tflite_bytes: int | None = None
    edge_ms: dict[str, float | None] = field(default_factory=dict)  # backend -> ms per frame on this machine
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def row(outcome: Outcome, edge_ms: dict[str, float | None]) -> Row:
    run, meta = outcome.run, outcome.meta
    result = Row(run.name, run.params, error=outcome.error, wall_s=outcome.wall_s)
    if meta is None:
        return result
    cfg, timings = run.config, meta.timings
    result.bundle = str(cfg.output_dir)
    result.test_accuracy = meta.metrics.test_accuracy
    result.validation_accuracy = meta.metrics.validation_accuracy
    result.bottleneck_s, result.train_s = timings.bottleneck_s, timings.train_s
    result.bottlenecks_computed, result.bottlenecks_cached = meta.bottlenecks.computed, meta.bottlenecks.cached
    result.images_per_s = round(cfg.how_many_training_steps * cfg.train_batch_size / max(timings.train_s, 1e-9), 1)
    result.tflite_bytes = meta.metrics.tflite.size_bytes if meta.metrics.tflite else None
    result.edge_ms = edge_ms
    return result


def ranked(rows: list[Row]) -> list[Row]:
    """Best first: validation accuracy (the test set stays a fair estimate), then test accuracy, then
    the shorter training; failed runs last."""

    def key(r: Row) -> tuple:
        return (not r.ok, -(r.validation_accuracy or 0), -(r.test_accuracy or 0), r.train_s or 0, r.name)

    return sorted(rows, key=key)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _bottlenecks(r: Row) -> str:
    if r.bottleneck_s is None:
        return ""
    if not r.bottlenecks_computed:
        return f"{r.bottleneck_s:.1f} s, all cached"
    return f"{r.bottleneck_s:.1f} s, {r.bottlenecks_computed} at {r.bottlenecks_computed / r.bottleneck_s:.0f}/s"


def cells(rows: list[Row], varying: list[str], backends: list[str]) -> tuple[list[str], list[list[str]]]:
    """Headers and text cells; the swept options that vary get a column each."""
    headers = [
        "#",
        "run",
        *(key.replace("_", "-") for key in varying),
        "test acc",
        "val acc",
        "bottlenecks",
        "train s",
        "images/s",
        "tflite MB",
    ]
    headers += [f"{name} ms" for name in backends] + ["error"]
    body = [
        [
            str(i),
            r.name,
            *(str(r.params[key]) for key in varying),
            _pct(r.test_accuracy),
            _pct(r.validation_accuracy),
            _bottlenecks(r),
            _num(r.train_s),
            _num(r.images_per_s, 0),
            _num(None if r.tflite_bytes is None else r.tflite_bytes / 1e6, 2),
            *(_num(r.edge_ms.get(name), 2) if r.ok else "" for name in backends),
            r.error or "",
        ]
        for i, r in enumerate(rows, 1)
    ]
    return headers, body


def text(headers: list[str], body: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(headers, *body, strict=True)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in [headers, *body]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def markdown(headers: list[str], body: list[list[str]]) -> str:
    escape = str.maketrans({"|": "\\|"})
    lines = [headers, ["---"] * len(headers), *body]
    return "\n".join("| " + " | ".join(cell.translate(escape) for cell in line) + " |" for line in lines)
