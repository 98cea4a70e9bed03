"""What one device may cost the fleet, decided when its sample arrives and before any work is spent on
it: its size, a token bucket of samples a minute, a disk quota for its unlabelled samples, and a bound
on the bytes of samples being checked and stored at once. A sample is an offer, not data: one refused
is acknowledged, counted by reason and gone (the device keeps sending new ones); predictions never
pass through here."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from cloud.options import (
    DEFAULT_SAMPLE_IN_FLIGHT_MIB,
    DEFAULT_SAMPLE_MAX_KIB,
    DEFAULT_SAMPLE_MAX_SIDE,
    DEFAULT_SAMPLE_QUOTA_MIB,
    DEFAULT_SAMPLE_RATE_PER_MIN,
)

log = logging.getLogger(__name__)

MIB = 1024 * 1024
LOG_EVERY_S = 60.0  # one line per device and reason at most this often: a flood must not flood the log too
MAX_LOGGED = 10_000  # (device, reason) pairs remembered by the log's throttle


@dataclass(frozen=True)
class SampleLimits:
    max_bytes: int = DEFAULT_SAMPLE_MAX_KIB * 1024
    max_side: int = DEFAULT_SAMPLE_MAX_SIDE
    per_minute: float | None = DEFAULT_SAMPLE_RATE_PER_MIN  # None: no rate limit
    quota_bytes: int | None = int(DEFAULT_SAMPLE_QUOTA_MIB * MIB)  # None: no disk quota
    in_flight_bytes: int = DEFAULT_SAMPLE_IN_FLIGHT_MIB * MIB


class Admission:
    """Thread-safe: paho's thread admits, the writer settles, the retention thread refreshes."""

    def __init__(self, limits: SampleLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # device: (tokens, when)
        self._stored: Counter[str] = Counter()  # bytes of unlabelled samples on disk, per device
        self._pending: Counter[str] = Counter()  # bytes admitted and not settled yet, per device
        self.in_flight = 0

    def admit(self, device_id: str, size: int) -> str | None:
        """None, and the bytes are reserved until `settle`; or the reason the sample is refused."""
        limits = self.limits
        if size > limits.max_bytes:
            return "oversized"
        with self._lock:
            if limits.per_minute is not None and not self._take_token(device_id):
                return "rate_limited"
            held = self._stored[device_id] + self._pending[device_id]
            if limits.quota_bytes is not None and held + size > limits.quota_bytes:
                return "over_quota"
            if self.in_flight + size > limits.in_flight_bytes:
                return "overloaded"
            self._pending[device_id] += size
            self.in_flight += size
        return None

    def settle(self, device_id: str, size: int, stored: bool) -> None:
        """An admitted sample is stored (its bytes count against the device's quota) or was refused."""
        with self._lock:
            self.in_flight -= size
            self._pending[device_id] -= size
            if not self._pending[device_id]:
                del self._pending[device_id]
            if stored:
                self._stored[device_id] += size

    def refresh(self, stored: dict[str, int]) -> None:
        """The store's own figures, now and then: labels, discards and expiry free a device's quota.
        Buckets that have refilled are forgotten (a full bucket is what a new device gets)."""
        with self._lock:
            self._stored = Counter(stored)
            now = self._clock()
            for device_id in [d for d in self._buckets if self._tokens(d, now) >= self._capacity]:
                del self._buckets[device_id]

    @property
    def _capacity(self) -> float:
        """A minute's worth of samples, and at least one."""
        return max(1.0, self.limits.per_minute or 0.0)

    def _tokens(self, device_id: str, now: float) -> float:
        """The device's bucket now: it fills at the rate, up to its capacity."""
        tokens, then = self._buckets.get(device_id, (self._capacity, now))
        return min(self._capacity, tokens + (now - then) * (self.limits.per_minute or 0.0) / 60.0)

    def _take_token(self, device_id: str) -> bool:
        now = self._clock()
        tokens = self._tokens(device_id, now)
        taken = tokens >= 1
        self._buckets[device_id] = (tokens - taken, now)
        return taken


class RefusalLog:
    """Logs a device's refused samples at most once a minute per reason, with how many went unlogged."""

    def __init__(self, every_s: float = LOG_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], float] = {}
        self._quiet: Counter[tuple[str, str]] = Counter()

    def refused(self, device_id: str, reason: str, why: str) -> None:
        key, now = (device_id, reason), self._clock()
        with self._lock:
            if len(self._last) > MAX_LOGGED:  # device ids are whatever a client puts in a topic: forget the quiet
                self._last = {k: t for k, t in self._last.items() if now - t < self.every_s}
                self._quiet = Counter({k: n for k, n in self._quiet.items() if k in self._last})
            if key in self._last and now - self._last[key] < self.every_s:
                self._quiet[key] += 1
                return
            self._last[key] = now
            quiet = self._quiet.pop(key, 0)
        more = f" ({quiet} more since the last line)" if quiet else ""
        log.warning("sample from %s refused: %s%s", device_id, why, more)
