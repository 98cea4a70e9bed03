"""`python -m cloud retrain-now MODEL`: the manual trigger from a shell. It queues a training (or joins
the one under way) in the same store as the service, whose trainer runs it."""

from __future__ import annotations

import argparse
import logging

from cloud.datasets import dataset_dir
from cloud.options import CloudOptions
from cloud.store import connect
from cloud.training.jobs import Jobs
from common import protocol
from common.command import SubParsers
from common.errors import ConfigError
from common.options import add_config_flags, from_args

log = logging.getLogger(__name__)


def add_parser(subparsers: SubParsers) -> None:
    now = subparsers.add_parser("retrain-now", help="queue a training of a model (the service runs it)")
    now.add_argument("model")
    now.add_argument("--reason", default="requested from the command line")
    add_config_flags(now, CloudOptions)
    now.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    cfg = from_args(CloudOptions, args)
    model = protocol.check_id(args.model, "model name")
    if not dataset_dir(cfg.data_dir, model).is_dir():
        raise ConfigError(f"no dataset for {model!r} at {dataset_dir(cfg.data_dir, model)}")
    job, created = Jobs(connect(cfg.db)).request(model, f"manual (cli): {args.reason}")
    print(f"job {job.id}: {'queued' if created else 'joined the training already ' + job.state}")
    return 0
