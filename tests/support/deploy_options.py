"""The command line a deployment file gives an edgeloop command, read by that command's own parser and options
model: a flag renamed or a value out of range fails here, not on a device."""

from __future__ import annotations

import argparse

from pydantic import BaseModel

from cloud import serve
from cloud.options import ServeConfig
from cloud.retrain import cli as retrain_cli
from cloud.retrain.config import RetrainConfig
from common.options import from_args
from edge import run
from edge.config import EdgeConfig

COMMANDS = {"run": (run.add_parser, EdgeConfig), "serve": (serve.add_parser, ServeConfig)}
COMMANDS["retrain"] = (retrain_cli.add_parser, RetrainConfig)


def options(argv: list[str]) -> BaseModel:
    """`argv` after `python -m edge` or `python -m cloud` (starting with run, serve or retrain), as options."""
    add_parser, model = COMMANDS[argv[0]]
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command", required=True))
    return from_args(model, parser.parse_args(argv))
