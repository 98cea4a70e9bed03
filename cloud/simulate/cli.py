"""`python -m cloud simulate-loop`: does labelling what the cameras see make the model better on what
they see, and which selection strategy gets there with the fewest labels?"""

from __future__ import annotations

import argparse
import json
import logging

from cloud.simulate.config import SimulateConfig
from common.command import SubParsers
from common.options import add_config_flags, from_args

log = logging.getLogger(__name__)


def add_parser(subparsers: SubParsers) -> None:
    p = subparsers.add_parser(
        "simulate-loop",
        help="simulate rounds of labelling, retraining and gating on a pool of field images with known labels",
        description="The loop as the service runs it, on folders whose labels are known: each round the promoted "
        "model scores the pool, near-duplicates collapse, a strategy picks --round-size images, they are "
        "labelled, a candidate is trained (head only, on cached bottlenecks) and gated. Reports the promoted "
        "model's accuracy on --eval-dir after each round, per strategy, against the whole pool labelled; "
        "writes table.txt, simulation.json and learning-curve.png to --output-dir. With "
        "--max-images-per-label, the seed's accuracy against training images per label instead.",
    )
    add_config_flags(p, SimulateConfig)
    p.add_argument("--json", action="store_true", help="print the result as one JSON object instead of the table")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from cloud.simulate.simulate import simulate

    output = simulate(from_args(SimulateConfig, args))
    print(json.dumps(output.json) if args.json else output.table)
    log.info("table, JSON and chart in %s", output.dir)
    return 0
