"""Benchmark: a sweep against the afternoon of re-runs it replaces.

N learning rates on one architecture, two ways: `python -m cloud sweep` (one command, bottlenecks
computed once) and N separate `python -m cloud retrain` runs, each with a cold bottleneck cache as a
user re-running the lab by hand with fresh folders gets. Wall times include process start, export
and, for the sweep, its edge latency measurements, table and chart. The ratios are what to compare:
the sweep saves the bottleneck phase of every run but the first, a share that grows with the base
(Inception v3's bottlenecks take minutes, MobileNet 0.25's seconds).

    .venv/bin/python tests/bench/bench_sweep.py [--rates 0.005,0.01,1.0] [--steps 4000] [--jobs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from common import bundle  # noqa: E402
from tests.support.data import write_dataset  # noqa: E402
from tests.support.shared import FLOWERS, MOBILENET_025_224  # noqa: E402

ARCH = "mobilenet_0.25_224"


def timed(*args: object) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "cloud", *map(str, args)], capture_output=True, text=True, cwd=ROOT, check=False
    )
    if result.returncode:
        raise SystemExit(f"cloud {args[0]} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="0.005,0.01,1.0", help="learning rates (default: the issue's three)")
    parser.add_argument("--steps", type=int, default=4000, help="training steps per run (retrain.py: 4000)")
    parser.add_argument("--jobs", type=int, default=1, help="the sweep's --jobs")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if FLOWERS.exists() and MOBILENET_025_224.exists():
            image_dir, weights = FLOWERS, str(MOBILENET_025_224)
        else:
            image_dir, weights = write_dataset(tmp_path / "made", per_label=300), "none"
        common = ["--image-dir", image_dir, "--architecture", ARCH, "--weights", weights]
        common += ["--how-many-training-steps", args.steps]

        sweep_s, stdout = timed(
            "sweep", *common, "--learning-rate", args.rates, "--jobs", args.jobs, "--json",
            "--bottleneck-dir", tmp_path / "bn-sweep", "--output-dir", tmp_path / "sweep",
        )  # fmt: skip
        result = json.loads(stdout)
        rates = args.rates.split(",")
        separate_s = [
            timed(
                "retrain", *common, "--learning-rate", rate,
                "--bottleneck-dir", tmp_path / f"bn-{i}", "--output-dir", tmp_path / f"bundle-{i}",
            )[0]
            for i, rate in enumerate(rates)
        ]  # fmt: skip
        separate_bottleneck_s = sum(
            bundle.load(tmp_path / f"bundle-{i}").meta.timings.bottleneck_s for i in range(len(rates))
        )

    figures = {
        "images": result["runs"][0]["bottlenecks_computed"] + result["runs"][0]["bottlenecks_cached"],
        "runs": len(rates),
        "steps": args.steps,
        "jobs": args.jobs,
        "sweep_s": round(sweep_s, 1),
        "separate_cold_retrains_s": round(sum(separate_s), 1),
        "separate_over_sweep": round(sum(separate_s) / sweep_s, 2),
        "bottlenecks_computed_by_sweep": sum(r["bottlenecks_computed"] for r in result["runs"]),
        "bottleneck_s_sweep": round(sum(r["bottleneck_s"] for r in result["runs"]), 1),
        "bottleneck_s_separate": round(separate_bottleneck_s, 1),
        "test_accuracy": {r["params"]["learning_rate"]: r["test_accuracy"] for r in result["runs"]},
    }
    print(
        f"{len(rates)} learning rates: sweep {sweep_s:.1f}s, {len(rates)} separate cold retrains "
        f"{sum(separate_s):.1f}s ({figures['separate_over_sweep']:.2f}x); bottleneck phases "
        f"{figures['bottleneck_s_sweep']}s against {figures['bottleneck_s_separate']}s"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
