"""`python -m cloud serve`: the aggregator (MQTT ingest into the store) and the HTTP API in one
process. Instances started with the same --group share the fleet's load."""

from __future__ import annotations

import logging
from pathlib import Path

import uvicorn
from pydantic import Field

from cloud.aggregator.ingest import Ingest
from cloud.api.app import create_app
from cloud.store import connect
from edge import protocol
from edge.command import SubParsers
from edge.flags import Options, add_config_flags, from_args
from edge.mqtt import url

log = logging.getLogger(__name__)


class ServeConfig(Options):
    broker: str = Field("mqtt://localhost:1883", description="mqtt://[user@]host[:port] or mqtts://…")
    db: str = Field("sqlite:///edgeloop-data/edgeloop.db", description="sqlite:///path or postgresql://…")
    data_dir: Path = Field(Path("edgeloop-data"), description="datasets, samples, models, bottlenecks")
    http_port: int = Field(8080, ge=0, le=65535, description="HTTP API and dashboard")
    http_host: str = Field("0.0.0.0", description="address the HTTP server listens on")
    group: str | None = Field(None, description="share the fleet's load with other instances of this group")
    client_id: str = Field("edgeloop-aggregator", description="MQTT client id: one per instance, stable")
    prefix: str = Field(protocol.DEFAULT_PREFIX, description="topic prefix")
    window_s: float = Field(300.0, gt=0, description="seconds of predictions behind drift, fps and the device gauges")


def add_parser(subparsers: SubParsers) -> None:
    p = subparsers.add_parser("serve", help="aggregate the fleet's predictions and serve the API")
    add_config_flags(p, ServeConfig)
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = from_args(ServeConfig, args)
    db = connect(cfg.db)
    ingest = Ingest(
        db, cfg.data_dir, url.parse(cfg.broker), protocol.Topics(cfg.prefix), client_id=cfg.client_id, group=cfg.group
    )
    ingest.start()
    try:
        uvicorn.run(
            create_app(db, ingest.metrics, cfg.data_dir, cfg.window_s),
            host=cfg.http_host,
            port=cfg.http_port,
            log_level="warning",
        )
    finally:
        ingest.stop()
        db.close()
    return 0
