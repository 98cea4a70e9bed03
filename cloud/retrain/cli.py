"""`python -m cloud retrain`: retrain.py's flags (dashed or underscored), or a YAML file of them."""

from __future__ import annotations

import argparse
import logging

from cloud.retrain.config import RetrainConfig
from common.command import SubParsers
from common.options import add_config_flags, from_args

log = logging.getLogger(__name__)


def add_parser(subparsers: SubParsers) -> None:
    p = subparsers.add_parser(
        "retrain",
        help="train a new last layer on a folder of labelled images and write a model bundle",
        description="TF for Poets retraining: frozen ImageNet base, cached bottlenecks, new softmax layer.",
    )
    add_config_flags(p, RetrainConfig)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from cloud.retrain import report
    from cloud.retrain.train import retrain

    cfg = from_args(RetrainConfig, args)
    meta = retrain(cfg)
    print(report.summary(meta, str(cfg.output_dir)))
    return 0
