"""Re-announces every promoted version when the service starts and then every half of the
announcements' lifetime (serve's --announcement-lifetime-days): each retained announcement is
signed anew before it expires, so a device that (re)connects months after a rollout still finds
one it accepts."""

from __future__ import annotations

import logging
import threading

from cloud.registry.rollout import Rollout
from cloud.registry.versions import Registry

log = logging.getLogger(__name__)

RETRY_S = 60.0


class Refresher(threading.Thread):
    def __init__(self, registry: Registry, rollout: Rollout, retry_s: float = RETRY_S) -> None:
        super().__init__(name="announcements", daemon=True)
        self.registry, self.rollout, self.retry_s = registry, rollout, retry_s
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        wait = 0.0
        while not self._stopping.wait(wait):
            wait = self.rollout.lifetime_s / 2 if self.refresh() else self.retry_s

    def refresh(self) -> bool:
        """True when every promoted version is announced again."""
        done = True
        try:
            names = sorted({v.name for v in self.registry.list() if v.state == "promoted"})
        except Exception as exc:  # the database away: again in a minute
            log.warning("cannot list the promoted versions to announce them again: %r", exc)
            return False
        for name in names:
            try:
                self.rollout.reannounce(name)
            except Exception as exc:  # the broker away: again in a minute
                log.warning("cannot announce %s again: %r", name, exc)
                done = False
        return done
