"""Why a client cannot reach its broker, said at once and again every REPEAT_S while it lasts: paho
retries quietly (every 1 to 10 s), and a device or service that only said "connecting to…" left the
operator guessing. Every client from `make_client` has one."""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger(__name__)

REPEAT_S = 30.0


class ConnectionLog:
    """paho's `on_pre_connect` and `on_connect_fail`: a failed attempt logs its reason (refused, no such
    host, TLS…) the first time and then every REPEAT_S, with how long and how many attempts so far; an
    attempt that got through to the broker ends the outage (what the broker answers is the client's to log)."""

    def __init__(self, who: str, address: object) -> None:
        self.who, self.address = who, str(address)  # the text, never the object: it holds the password
        self.attempts = 0
        self.failures = 0  # in the current outage
        self._since: float | None = None  # when the current outage began
        self._logged = 0.0
        self._last_failed = False

    def on_pre_connect(self, client: object, userdata: object) -> None:
        if self.attempts and not self._last_failed:
            self._since, self.failures = None, 0
        self.attempts += 1
        self._last_failed = False
        log.debug("%s: connecting to %s (attempt %d)", self.who, self.address, self.attempts)

    def on_connect_fail(self, client: object, userdata: object) -> None:
        # paho calls this from its `except OSError:` block without the exception: it is the one being handled
        error = sys.exc_info()[1]
        reason = (str(error) or type(error).__name__) if error else "unknown reason"
        now = time.monotonic()
        self._last_failed = True
        self.failures += 1
        if self._since is None:
            self._since, self._logged = now, now
            log.error("%s cannot reach the broker at %s: %s; retrying", self.who, self.address, reason)
        elif now - self._logged >= REPEAT_S:
            self._logged = now
            log.error(
                "%s still cannot reach the broker at %s after %.0f s and %d attempts: %s",
                self.who, self.address, now - self._since, self.failures, reason,
            )  # fmt: skip
