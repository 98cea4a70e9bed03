"""The closed loop's parts in the service, wired together: the job queue, the registry and its
rollout, the trainer, the triggers and the MQTT retrain command. Only instances started with
training on run the trainer and the triggers; every instance serves the registry's API."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from fastapi import APIRouter

from cloud.aggregator.drift import largest_drift
from cloud.api import models
from cloud.registry.rollout import Rollout
from cloud.registry.versions import Registry
from cloud.store import Database
from cloud.training.commands import RetrainCommands
from cloud.training.jobs import Jobs
from cloud.training.runner import TrainingPolicy, TrainingRunner
from cloud.training.triggers import TriggerLoop
from common import protocol
from common.mqtt.url import BrokerAddress

if TYPE_CHECKING:
    from cloud.serve import ServeConfig

log = logging.getLogger(__name__)

CANARY_CHECK_S = 5.0


class Loop:
    def __init__(self, db: Database, cfg: ServeConfig, address: BrokerAddress, topics: protocol.Topics) -> None:
        self.cfg = cfg
        self.jobs = Jobs(db)
        self.registry = Registry(db, cfg.data_dir)
        self.rollout = Rollout(self.registry, address, topics, cfg.public_url, cfg.signer())
        policy = TrainingPolicy(gate_margin=cfg.gate_margin, canary_groups=cfg.canary_groups)
        self.runner = TrainingRunner(self.jobs, self.registry, self.rollout, cfg.data_dir, policy)
        triggers = cfg.trigger_policy()
        self.triggers = TriggerLoop(
            db,
            self.jobs,
            cfg.data_dir,
            triggers,
            lambda model, window_s: largest_drift(db, model, window_s, triggers.min_predictions),
        )
        self.commands = RetrainCommands(
            self.jobs, cfg.data_dir, address, topics, f"{cfg.client_id}-commands", cfg.group
        )
        self._stop = threading.Event()
        self._canary = threading.Thread(target=self._widen_canaries, name="canary", daemon=True)
        self.started = False

    def router(self) -> APIRouter:
        return models.router(self.jobs, self.registry, self.cfg.data_dir)

    def start(self) -> None:
        self.jobs.fail_interrupted()
        for part in (self.runner, self.triggers, self.commands, self._canary):
            part.start()
        self.started = True

    def stop(self) -> None:
        if not self.started:
            return
        self._stop.set()
        for part in (self.commands, self.triggers, self.runner):
            part.stop()

    def _widen_canaries(self) -> None:
        while self.cfg.canary_widen and not self._stop.wait(CANARY_CHECK_S):
            for version in self.registry.list():
                if version.state != "promoted" or not version.rollout_groups:
                    continue
                try:
                    if self.rollout.canary_ready(version.name):
                        log.info(
                            "canary %s %s runs on its groups; widening to the fleet", version.name, version.version
                        )
                        self.rollout.widen(version.name)
                except Exception as exc:  # the broker or database away: next round
                    log.warning("cannot check the canary of %s: %r", version.name, exc)
