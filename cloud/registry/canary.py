"""Widens each canary to the whole fleet once every online device of its groups runs it (serve's
--canary-widen): a version announced to some groups first needs no one to come back for it."""

from __future__ import annotations

import logging
import threading

from cloud.registry.rollout import Rollout
from cloud.registry.versions import Registry

log = logging.getLogger(__name__)

CHECK_S = 5.0


class CanaryWidener(threading.Thread):
    def __init__(self, registry: Registry, rollout: Rollout, check_s: float = CHECK_S) -> None:
        super().__init__(name="canary", daemon=True)
        self.registry, self.rollout, self.check_s = registry, rollout, check_s
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        while not self._stopping.wait(self.check_s):
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
