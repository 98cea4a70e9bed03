"""The learning curves as one PNG: field accuracy against labels, one line per strategy, between the
seed alone (where every line starts) and the whole pool labelled (where they should head)."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt

from cloud.simulate.result import LoopResult, SizesResult

log = logging.getLogger(__name__)

SIZE_IN, DPI = (8, 5), 100


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    log.info("chart: %s", path)
    return path


def draw_loop(result: LoopResult, default: str, path: Path) -> Path:
    fig, axes = plt.subplots(figsize=SIZE_IN, dpi=DPI)
    colours = plt.get_cmap("tab10")
    for i, c in enumerate(result.curves):
        bold = c.strategy == default
        label = f"{c.strategy} (default)" if bold else c.strategy
        axes.plot(
            c.labels,
            [100 * v for v in c.promoted],
            marker="o",
            color=colours(i % 10),
            linewidth=2.5 if bold else 1.5,
            label=label,
        )
    axes.axhline(100 * result.reference, color="black", linestyle="--", label="whole pool labelled")
    axes.set(
        xlabel="field images labelled",
        ylabel="field accuracy of the promoted model (%)",
        title=f"learning curves on {result.eval_images} held-out field images",
    )
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small", loc="lower right")
    return _save(fig, path)


def draw_sizes(result: SizesResult, path: Path) -> Path:
    fig, axes = plt.subplots(figsize=SIZE_IN, dpi=DPI)
    sizes = [s.max_per_label for s in result.sizes]
    axes.plot(sizes, [100 * s.mean for s in result.sizes], marker="o", linewidth=2)
    for s in result.sizes:
        axes.annotate(
            f"{100 * s.mean:.1f}", (s.max_per_label, 100 * s.mean), textcoords="offset points", xytext=(4, -12)
        )
    axes.set_xscale("log")
    axes.set(
        xlabel="training images per label (at most)",
        ylabel="test accuracy (%)",
        title=f"how many images per label? ({result.test_images} seed test images)",
    )
    axes.grid(alpha=0.3, which="both")
    return _save(fig, path)
