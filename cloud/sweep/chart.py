"""The sweep at a glance, one PNG: test accuracy against training time (which run buys its accuracy
cheaply), and every run's validation accuracy curve (how it got there: too slow, unstable, ...)."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt

from cloud.sweep.summaries import curve
from cloud.sweep.table import Row

log = logging.getLogger(__name__)

SIZE_IN, DPI = (12, 5), 100


def draw(rows: list[Row], logdir: Path, path: Path) -> Path:
    """Write the chart of the finished runs in `rows` (best first) to `path`."""
    finished = [r for r in rows if r.ok]
    fig, (tradeoff, curves) = plt.subplots(1, 2, figsize=SIZE_IN, dpi=DPI)
    colours = plt.get_cmap("tab10")
    for i, r in enumerate(finished):
        colour = colours(i % 10)
        if r.test_accuracy is not None:
            tradeoff.scatter(r.train_s, 100 * r.test_accuracy, color=colour, s=60, zorder=3)
            tradeoff.annotate(r.name, (r.train_s, 100 * r.test_accuracy), textcoords="offset points", xytext=(6, 4))
        steps, values = curve(logdir / r.name / "validation")
        curves.plot(steps, [100 * v for v in values], color=colour, label=r.name, linewidth=1.5)
    tradeoff.set(xlabel="training time (s)", ylabel="test accuracy (%)", title="accuracy against training time")
    curves.set(xlabel="training step", ylabel="validation accuracy (%)", title="learning curves")
    tradeoff.margins(0.25)  # room for the run names beside the points
    for axes in (tradeoff, curves):
        axes.grid(alpha=0.3)
    if finished:
        curves.legend(fontsize="small", loc="lower right")
    else:
        tradeoff.text(0.5, 0.5, "no run finished", ha="center", transform=tradeoff.transAxes)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    log.info("chart: %s", path)
    return path
