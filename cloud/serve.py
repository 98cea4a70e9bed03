"""`python -m cloud serve`: the aggregator (MQTT ingest into the store) and the HTTP API in one
process, with the closed loop's parts (cloud/service.py builds them). Instances started with the
same --group share the fleet's load."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from cloud.aggregator.garbage import tune_for_ingest
from cloud.api.auth import check_exposure
from cloud.options import ServeConfig
from cloud.service import Service, api_access
from common.command import SubParsers
from common.options import add_config_flags, from_args

log = logging.getLogger(__name__)


def add_parser(subparsers: SubParsers) -> None:
    p = subparsers.add_parser("serve", help="aggregate the fleet's predictions and serve the API")
    add_config_flags(p, ServeConfig)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    cfg = from_args(ServeConfig, args)
    check_exposure(cfg.http_host, api_access(cfg).token, cfg.insecure_open_api)
    service = Service(cfg)
    tune_for_ingest()
    try:
        service.start()
        log.info("serving http://%s:%d/", cfg.http_host, cfg.http_port)
        # log_config=None: uvicorn's own lines go through our handler, in --log-format too
        uvicorn.run(service.app, host=cfg.http_host, port=cfg.http_port, log_level="warning", log_config=None)
    finally:
        service.stop()
    return 0
