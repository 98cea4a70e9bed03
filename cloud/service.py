"""`python -m cloud serve`'s parts, built in one place from its options, each handed its policy: the
store, MQTT ingest, the HTTP app, the job queue, the registry and its rollout, and, in instances
started with training on, the trainer, the triggers, the MQTT retrain command and canary widening.
Every instance serves the registry's API."""

from __future__ import annotations

import logging
import os
from typing import Protocol

from cloud.aggregator.drift import largest_drift
from cloud.aggregator.ingest import Ingest
from cloud.api import models
from cloud.api.app import create_app
from cloud.api.auth import TOKEN_ENV
from cloud.options import ServeConfig
from cloud.registry.canary import CanaryWidener
from cloud.registry.gate import GatePolicy
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


def training_policy(cfg: ServeConfig) -> TrainingPolicy:
    gate = GatePolicy(cfg.gate_margin, cfg.gate_field_images, cfg.gate_seed_margin, cfg.gate_alpha)
    return TrainingPolicy(gate=gate, canary_groups=cfg.canary_groups)


class Service:
    def __init__(self, cfg: ServeConfig) -> None:
        self.cfg = cfg
        self.db = db = connect(cfg.db)
        address, topics = cfg.broker_address(), protocol.Topics(cfg.prefix)
        self.ingest = Ingest(db, cfg.data_dir, address, topics, client_id=cfg.client_id, group=cfg.group)
        self.jobs = Jobs(db)
        self.registry = Registry(db, cfg.data_dir)
        self.rollout = Rollout(self.registry, address, topics, cfg.public_url, cfg.signer())
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
        self.canary = CanaryWidener(self.registry, self.rollout)
        registry_api = models.router(self.jobs, self.registry, cfg.data_dir)
        token = os.environ.get(TOKEN_ENV) or None
        queue = Queue(db, cfg.data_dir, QueuePolicy(order=cfg.queue_order, pool=cfg.queue_pool))
        self.app = create_app(db, self.ingest.metrics, cfg.data_dir, [registry_api], cfg.metrics_window_s, token, queue)
        self._started: list[Part] = []

    def start(self) -> None:
        self._start(self.ingest)
        if not self.cfg.train:
            log.info("training off: this instance runs no trainer, triggers or retrain command")
            return
        self.jobs.fail_interrupted()
        for part in (self.trainer, self.triggers, self.commands):
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
