"""Benchmark: does labelling what the cameras see make the model better on what they see, and which
selection strategy gets there with the fewest labels?

The flower photos become a clean seed and simulated fields (tests/support/fields.py), each degraded
its own way, each with a pool of 2-4 jittered frames per photo and held-out eval photos. On every
field `python -m cloud simulate-loop` runs the loop (MobileNet 0.25/224, the retrainer's head-only
training on cached bottlenecks, the service's gate) for every strategy and repeat seed, and the
whole pool labelled as reference. Printed: each field's table, then per strategy the promoted
model's field accuracy at the budget against the whole pool (ratio) and against random (points),
per field and as the mean over the reported fields; then the seed's images-per-label curve.

The strategies, the field weight and the near-duplicate threshold were tuned on the fields of
TUNING only; the targets (default strategy >= 95% of the whole pool, >= 3 points over random) are
judged on the mean over the others. Bottlenecks and fields are kept in --work-dir: a rerun only trains.

    .venv/bin/python tests/bench/bench_field.py [--fields lowres,blur_noise,colour,framing,mixed]
        [--repeats 3] [--budget 250] [--round-size 50] [--field-weight W] [--gate-margin M] [--label-prior]

With --label-prior each field also has its camera's own label distribution (one label 40% of its
pool and eval photos, tests/support/fields.py): a separate experiment, in folders of its own.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from cloud.retrain.config import RetrainConfig  # noqa: E402
from cloud.selection.strategies import DEFAULT_STRATEGY  # noqa: E402
from cloud.simulate.config import SimulateConfig  # noqa: E402
from cloud.simulate.simulate import simulate  # noqa: E402
from tests.support.fields import FIELDS, write_fields  # noqa: E402
from tests.support.shared import FLOWERS, MOBILENET_025_224  # noqa: E402

ARCH = "mobilenet_0.25_224"
TUNING = ("framing", "mixed")  # what the defaults were tuned on: reported apart


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fields", default=",".join(FIELDS), help="simulated fields, comma-separated")
    parser.add_argument(
        "--strategies", default=None, help="strategies (default: all); random and the default always run"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per strategy and field, seeds 0..N-1")
    parser.add_argument("--budget", type=int, default=250, help="labels in all")
    parser.add_argument("--round-size", type=int, default=50, help="labels per round")
    parser.add_argument("--field-weight", type=float, default=RetrainConfig.model_fields["field_weight"].default)
    parser.add_argument("--gate-margin", type=float, default=0.0, help="the gate's margin on all test images")
    parser.add_argument("--similarity", type=float, default=None, help="near-duplicate threshold (default: the loop's)")
    parser.add_argument("--sizes", default="10,30,100", help="--max-images-per-label of the seed-only curve")
    parser.add_argument(
        "--label-prior", action="store_true", help="fields with their camera's own label distribution (one label 40%%)"
    )
    parser.add_argument("--work-dir", type=Path, default=Path("~/.cache/edgeloop/bench-field").expanduser())
    return parser.parse_args()


def summary(results: dict[str, dict], names: list[str], fields: list[str]) -> list[str]:
    """Per strategy: promoted accuracy at the budget, its share of the whole pool's, points over random."""
    lines = [
        f"{'strategy':<14}{'accuracy':>9}{'of pool':>9}{'vs random':>11}   per field (accuracy / of pool / vs random)"
    ]
    for name in names:
        at = [results[f]["strategies"][name]["at_budget"] for f in fields]
        mean = {k: float(np.mean([a[k] for a in at])) for k in ("promoted", "of_whole_pool", "over_random")}
        per = "  ".join(
            f"{f} {100 * a['promoted']:.1f}/{a['of_whole_pool']:.3f}/{100 * a['over_random']:+.1f}"
            for f, a in zip(fields, at, strict=True)
        )
        figures = f"{100 * mean['promoted']:>9.1f}{mean['of_whole_pool']:>9.3f}{100 * mean['over_random']:>+11.1f}"
        lines.append(f"{name:<14}{figures}   {per}")
    return lines


def mean_curves(results: dict[str, dict], names: list[str], fields: list[str]) -> list[str]:
    labels = results[fields[0]]["strategies"][names[0]]["labels"]
    lines = ["labels" + "".join(f"{n:>14}" for n in names) + f"{'whole pool':>14}"]
    pool = np.mean([results[f]["whole_pool"]["accuracy"] for f in fields])
    for i, n_labels in enumerate(labels):
        row = [np.mean([results[f]["strategies"][n]["promoted"][i] for f in fields]) for n in names]
        lines.append(f"{n_labels:>6}" + "".join(f"{100 * v:>14.1f}" for v in row) + f"{100 * pool:>14.1f}")
    return lines


def main() -> None:
    args = arguments()
    if not (FLOWERS.exists() and MOBILENET_025_224.exists()):
        raise SystemExit(f"needs {FLOWERS} and {MOBILENET_025_224} (../shared beside the project)")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    fields = [f.strip() for f in args.fields.split(",") if f.strip()]
    started = time.perf_counter()
    folders = write_fields(FLOWERS, args.work_dir / "fields", fields, prior=args.label_prior)
    made_s = time.perf_counter() - started
    common = {
        "seed_dir": folders.seed,
        "architecture": ARCH,
        "weights": str(MOBILENET_025_224),
        "bottleneck_dir": args.work_dir / "bottlenecks",
        "repeats": args.repeats,
        "budget": args.budget,
        "round_size": args.round_size,
        "field_weight": args.field_weight,
        "gate_margin": args.gate_margin,
    }
    if args.strategies:  # random and the default are what the figures compare
        common["strategies"] = list(dict.fromkeys(["random", *args.strategies.split(","), DEFAULT_STRATEGY]))
    common |= {"similarity": args.similarity} if args.similarity else {}
    results: dict[str, dict] = {}
    for field in fields:
        clock = time.perf_counter()
        cfg = SimulateConfig(
            **common,
            pool_dir=folders.pools[field],
            eval_dir=folders.evals[field],
            output_dir=args.work_dir / "out" / folders.pools[field].parent.name,
        )
        output = simulate(cfg)
        results[field] = output.json
        print(f"\n== {field} ({time.perf_counter() - clock:.0f}s; chart {output.dir / 'learning-curve.png'})")
        print(output.table, flush=True)
    sizes = simulate(
        SimulateConfig(**common, max_images_per_label=args.sizes, output_dir=args.work_dir / "out" / "seed")
    )
    total_s = time.perf_counter() - started

    names = list(results[fields[0]]["strategies"])
    reported = [f for f in fields if f not in TUNING] or fields
    tuned = [f for f in fields if f in TUNING]
    print(f"\n== promoted field accuracy (%), mean over {', '.join(reported)}")
    print("\n".join(mean_curves(results, names, reported)))
    print(f"\n== at {args.budget} labels, mean over {', '.join(reported)} (default: {DEFAULT_STRATEGY})")
    print("\n".join(summary(results, names, reported)))
    if tuned and tuned != reported:
        print(f"\n== at {args.budget} labels, the tuning fields {', '.join(tuned)}")
        print("\n".join(summary(results, names, tuned)))
    print("\n== " + sizes.table)
    default = [results[f]["strategies"][DEFAULT_STRATEGY]["at_budget"] for f in reported]
    figures = {
        "fields": reported,
        "tuning_fields": tuned,
        "default_strategy": DEFAULT_STRATEGY,
        "field_weight": args.field_weight,
        "gate_margin": args.gate_margin,
        "default_of_whole_pool": round(float(np.mean([a["of_whole_pool"] for a in default])), 4),
        "default_over_random": round(float(np.mean([a["over_random"] for a in default])), 4),
        "fields_made_s": round(made_s, 1),
        "total_s": round(total_s, 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
