"""`python -m cloud serve`: the aggregator (MQTT ingest into the store) and the HTTP API in one
process. Instances started with the same --group share the fleet's load."""

from __future__ import annotations

import logging
import os

import uvicorn
from pydantic import Field, field_validator

from cloud.aggregator.ingest import Ingest
from cloud.api.app import create_app
from cloud.api.auth import TOKEN_ENV
from cloud.loop import Loop
from cloud.options import CloudOptions
from cloud.store import connect
from cloud.training.triggers import TriggerPolicy
from common import protocol
from common.command import SubParsers
from common.mqtt import url
from common.options import add_config_flags, from_args

log = logging.getLogger(__name__)


class ServeConfig(CloudOptions):
    http_port: int = Field(8080, ge=0, le=65535, description="HTTP API and dashboard")
    http_host: str = Field("0.0.0.0", description="address the HTTP server listens on")
    group: str | None = Field(None, description="share the fleet's load with other instances of this group")
    client_id: str = Field("edgeloop-aggregator", description="MQTT client id: one per instance, stable")
    train: bool = Field(True, description="run triggers and trainings in this instance (one per fleet is enough)")
    train_new_models: bool = Field(True, description="train a model whose dataset has never been trained")
    retrain_every_h: float | None = Field(None, gt=0, description="periodic trigger: hours between trainings")
    retrain_after_labels: int | None = Field(50, ge=1, description="data trigger: new labelled samples")
    retrain_below_confidence: float | None = Field(
        None, gt=0, le=1, description="drift trigger: the fleet's mean top-1 score under this"
    )
    retrain_above_drift: float | None = Field(
        None, gt=0, le=1, description="drift trigger: a device's label distribution drift above this"
    )
    trigger_window_s: float = Field(3600, gt=0, description="window the drift triggers look at")
    trigger_interval_s: float = Field(30, gt=0, description="seconds between trigger evaluations")
    gate_margin: float = Field(0.0, ge=0, le=1, description="a candidate may be this much less accurate and pass")
    canary_groups: list[str] | None = Field(None, description="announce a new version to these device groups first")
    canary_widen: bool = Field(True, description="widen a canary to the fleet once its devices run it")
    metrics_window_s: float = Field(
        300.0, gt=0, description="window of the device gauges of /metrics, and of /api/devices by default"
    )

    @field_validator("canary_groups", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return [g.strip() for g in value.split(",") if g.strip()] or None if isinstance(value, str) else value

    @field_validator("canary_groups")
    @classmethod
    def _valid_groups(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [protocol.check_id(g, "group") for g in value]

    def trigger_policy(self) -> TriggerPolicy:
        return TriggerPolicy(
            interval_s=self.trigger_interval_s,
            initial=self.train_new_models,
            every_h=self.retrain_every_h,
            after_labels=self.retrain_after_labels,
            min_mean_confidence=self.retrain_below_confidence,
            max_label_drift=self.retrain_above_drift,
            window_s=self.trigger_window_s,
        )


def add_parser(subparsers: SubParsers) -> None:
    p = subparsers.add_parser("serve", help="aggregate the fleet's predictions and serve the API")
    add_config_flags(p, ServeConfig)
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = from_args(ServeConfig, args)
    db = connect(cfg.db)
    address, topics = url.parse(cfg.broker), protocol.Topics(cfg.prefix)
    ingest = Ingest(db, cfg.data_dir, address, topics, client_id=cfg.client_id, group=cfg.group)
    loop = Loop(db, cfg, address, topics)
    ingest.start()
    if cfg.train:
        loop.start()
    try:
        token = os.environ.get(TOKEN_ENV) or None
        app = create_app(db, ingest.metrics, cfg.data_dir, [loop.router()], cfg.metrics_window_s, token)
        uvicorn.run(app, host=cfg.http_host, port=cfg.http_port, log_level="warning")
    finally:
        loop.stop()
        ingest.stop()
        db.close()
    return 0
