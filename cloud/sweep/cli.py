"""`python -m cloud sweep`: the retrain flags, the swept ones as comma-separated lists."""

from __future__ import annotations

import argparse
import json
import logging

from cloud.retrain.cli import RETRAIN_PY_FLAGS
from cloud.sweep.config import SweepConfig
from common.command import SubParsers, hint
from common.options import add_config_flags, from_args

log = logging.getLogger(__name__)


def add_parser(subparsers: SubParsers) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="retrain over every combination of architectures, learning rates, steps, batch sizes, devices",
        description="Many retrainings from one command, sharing the bottleneck cache, compared in one table "
        "and chart. --architecture, --learning-rate, --how-many-training-steps, --train-batch-size, "
        "--fine-tune-layers and --device take comma-separated lists.",
    )
    add_config_flags(p, SweepConfig)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object instead of the table")
    hint(p, RETRAIN_PY_FLAGS)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from cloud.sweep.sweep import sweep

    result = sweep(from_args(SweepConfig, args))
    print(json.dumps(result.to_json()) if args.json else result.report())
    return 0 if result.best else 1
