"""`python -m cloud serve`'s parts, built in one place from its options, each handed its policy: the
store, MQTT ingest, the HTTP app, the job queue, the registry and its rollout, and, in instances
started with training on, the trainer, the triggers, the MQTT retrain command, canary widening and
the announcements signed anew before they expire, and, when asked, Home Assistant's discovery.
Every instance serves the registry's API."""

from __future__ import annotations

import logging
import os
from typing import Protocol
from urllib.parse import urlsplit

from cloud.aggregator.drift import largest_drift
from cloud.aggregator.ingest import Ingest
from cloud.aggregator.quotas import MIB, SampleLimits
from cloud.aggregator.retention import PredictionRetention, Retention
from cloud.api import health, models
from cloud.api.app import create_app
from cloud.api.auth import TOKEN_ENV, Access, is_loopback
from cloud.homeassistant import HomeAssistant
from cloud.options import ServeConfig
from cloud.registry.canary import CanaryWidener
from cloud.registry.gate import GatePolicy
from cloud.registry.refresh import Refresher
from cloud.registry.rollout import Rollout
from cloud.registry.versions import Registry
from cloud.selection.queue import Queue, QueuePolicy
from cloud.store import connect
from cloud.training.commands import RetrainCommands
from cloud.training.jobs import Jobs
from cloud.training.trainer import Trainer, TrainingPolicy
from cloud.training.triggers import TriggerPolicy, Triggers
from common import protocol

log = logging.getLogger(__name__)


class Part(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


def trigger_policy(cfg: ServeConfig) -> TriggerPolicy:
    return TriggerPolicy(
        interval_s=cfg.trigger_interval_s,
        initial=cfg.train_new_models,
        every_h=cfg.retrain_every_h,
        after_labels=cfg.retrain_after_labels,
        min_mean_confidence=cfg.retrain_below_confidence,
        max_label_drift=cfg.retrain_above_drift,
        window_s=cfg.trigger_window_s,
    )


def sample_limits(cfg: ServeConfig) -> SampleLimits:
    return SampleLimits(
        max_bytes=cfg.sample_max_kib * 1024,
        max_side=cfg.sample_max_side,
        per_minute=cfg.sample_rate_per_min,
        quota_bytes=None if cfg.sample_quota_mib is None else int(cfg.sample_quota_mib * MIB),
        in_flight_bytes=cfg.sample_in_flight_mib * MIB,
    )


def training_policy(cfg: ServeConfig) -> TrainingPolicy:
    gate = GatePolicy(cfg.gate_margin, cfg.gate_field_images, cfg.gate_seed_margin, cfg.gate_alpha)
    return TrainingPolicy(gate=gate, canary_groups=cfg.canary_groups)


def api_access(cfg: ServeConfig) -> Access:
    token = os.environ.get(TOKEN_ENV) or None
    return Access(
        token=token,
        protect_reads=cfg.protect_reads,
        public_host=urlsplit(cfg.download_url).hostname,
        loopback_only=not token and is_loopback(cfg.http_host),
    )


class Service:
    def __init__(self, cfg: ServeConfig) -> None:
        self.cfg = cfg
        self.db = db = connect(cfg.db)
        address, topics = cfg.broker_address(), protocol.Topics(cfg.prefix, cfg.homeassistant_prefix)
        retention = PredictionRetention(cfg.retain_days, cfg.rollup_retain_days)
        self.ingest = Ingest(
            db, cfg.data_dir, address, topics, client_id=cfg.client_id, group=cfg.group, limits=sample_limits(cfg),
            retention=retention,
        )  # fmt: skip
        self.retention = Retention(
            db, cfg.data_dir, cfg.sample_retain_days, self.ingest.metrics, self.ingest.admission.refresh,
            predictions=retention,
        )  # fmt: skip
        self.jobs = Jobs(db)
        self.registry = Registry(db, cfg.data_dir)
        self.rollout = Rollout(
            self.registry, address, topics, cfg.download_url, cfg.signer(), lifetime_s=cfg.announcement_lifetime_s
        )
        self.trainer = Trainer(self.jobs, self.registry, self.rollout, cfg.data_dir, training_policy(cfg))
        triggers = trigger_policy(cfg)
        self.triggers = Triggers(
            db,
            self.jobs,
            cfg.data_dir,
            triggers,
            lambda model, window_s: largest_drift(db, model, window_s, triggers.min_predictions),
        )
        self.commands = RetrainCommands(
            self.jobs, cfg.data_dir, address, topics, f"{cfg.client_id}-commands", cfg.group
        )
        self.homeassistant = (
            HomeAssistant(
                db, address, topics, f"{cfg.client_id}-homeassistant", cfg.homeassistant_interval_s,
                cfg.metrics_window_s,
            )
            if cfg.homeassistant_discovery
            else None
        )  # fmt: skip
        self.canary = CanaryWidener(self.registry, self.rollout)
        self.refresher = Refresher(self.registry, self.rollout)
        routers = [
            models.router(self.jobs, self.registry, cfg.data_dir),
            health.router(lambda: {"store": db.reachable(), "mqtt": self.ingest.connected}),
        ]
        queue = Queue(db, cfg.data_dir, QueuePolicy(order=cfg.queue_order, pool=cfg.queue_pool))
        access = api_access(cfg)
        self.app = create_app(db, self.ingest.metrics, cfg.data_dir, routers, cfg.metrics_window_s, access, queue)
        self._started: list[Part] = []

    def start(self) -> None:
        self._start(self.ingest)
        self._start(self.retention)
        if self.homeassistant:
            self._start(self.homeassistant)
        if not self.cfg.train:
            log.info("training off: this instance runs no trainer, triggers or retrain command")
            return
        self.jobs.fail_interrupted()
        for part in (self.trainer, self.triggers, self.commands, self.refresher):
            self._start(part)
        if self.cfg.canary_widen:
            self._start(self.canary)

    def stop(self) -> None:
        """Stops what started, the last started first, then closes the store."""
        while self._started:
            self._started.pop().stop()
        self.db.close()

    def _start(self, part: Part) -> None:
        part.start()
        self._started.append(part)
