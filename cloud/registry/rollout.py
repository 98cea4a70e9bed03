"""Rollout: promoting a version publishes its retained announcement (URL, sha256, metrics), which
devices follow; a canary announcement names device groups and is widened to the whole fleet once
those devices report the new version; a rollback announces the version promoted before anew. Each
announcement carries a new serial and an expiry, and is signed whole with the registry's key."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import paho.mqtt.client as mqtt

from cloud.registry import gate
from cloud.registry.versions import Registry, RegistryError, Version
from cloud.store import devices as device_store
from common import protocol
from common.mqtt.client import make_client
from common.mqtt.url import BrokerAddress
from common.signing import Signer

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 30


_serial_lock = threading.Lock()
_last_serial = 0


def next_serial() -> int:
    """The wall clock in ms, strictly increasing within the process: a serial needs no state shared
    by the service and the CLI, and a store restored from a backup cannot hand out one already used."""
    global _last_serial
    with _serial_lock:
        _last_serial = max(time.time_ns() // 1_000_000, _last_serial + 1)
        return _last_serial


class Rollout:
    def __init__(
        self,
        registry: Registry,
        address: BrokerAddress,
        topics: protocol.Topics,
        public_url: str,
        signer: Signer | None = None,
        *,
        lifetime_s: float,
    ) -> None:
        self.registry = registry
        self.signer = signer
        self.address = address
        self.topics = topics
        self.public_url = public_url.rstrip("/")
        self.lifetime_s = lifetime_s
        self._lock = threading.Lock()  # a re-announcement must not overtake the promotion it reads
        if signer is None:
            log.warning("no --signing-key: announcements go out unsigned, and devices refuse them unless started "
                        "with --allow-unsigned-models")  # fmt: skip

    def announcement(self, version: Version, groups: list[str] | None) -> protocol.Announcement:
        metrics = {k: version.metrics.get(k) for k in ("test_accuracy", "validation_accuracy")}
        unsigned = protocol.Announcement(
            name=version.name,
            version=version.version,
            url=f"{self.public_url}/models/{version.name}/{version.version}.tar.gz",
            sha256=version.sha256,
            metrics=metrics,
            created=datetime.fromtimestamp(version.created, timezone.utc).isoformat(timespec="seconds"),
            groups=groups,
            serial=next_serial(),
            expires=datetime.fromtimestamp(time.time() + self.lifetime_s, timezone.utc).replace(microsecond=0),
        )
        return self.signer.sign(unsigned) if self.signer else unsigned

    def announce(self, version: Version, groups: list[str] | None) -> None:
        """Publish the retained announcement and wait for the broker to take it."""
        client = make_client(self.address, f"edgeloop-rollout-{uuid.uuid4().hex[:8]}")
        rc = client.connect(self.address.host, self.address.port, 30)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise RegistryError(f"cannot reach the broker at {self.address}: {mqtt.error_string(rc)}")
        client.loop_start()
        try:
            body = self.announcement(version, groups).encode()
            kind = protocol.MODELS
            info = client.publish(self.topics.model(version.name), body, qos=kind.qos, retain=kind.retain)
            info.wait_for_publish(PUBLISH_TIMEOUT_S)
            if not info.is_published():
                raise RegistryError(f"the broker at {self.address} did not take the announcement")
        finally:
            client.disconnect()
            client.loop_stop()
        log.info("announced %s %s to %s", version.name, version.version, ", ".join(groups) if groups else "the fleet")

    def reannounce(self, name: str) -> None:
        """Announce the promoted version again, newly signed (a new serial and expiry), so the
        retained announcement never expires while the service runs."""
        with self._lock:
            current = self._promoted(name)
            self.announce(current, current.rollout_groups)

    def promote(self, name: str, version: str, groups: list[str] | None = None) -> Version:
        chosen = self.registry.get(name, version)
        if chosen.state == "rejected":
            raise RegistryError(f"{name} {version} was rejected ({(chosen.gate or {}).get('why', 'no reason')})")
        with self._lock:
            self.registry.set_promoted(chosen, groups)
            self.announce(chosen, groups)
        return self.registry.get(name, version)

    def gate_and_promote(
        self, candidate: Version, dataset: Path | None, policy: gate.GatePolicy, canary: list[str] | None = None
    ) -> str:
        """Judge a candidate against the promoted version on the dataset's current test split;
        promote and announce it if it passes (to the canary groups first, unless it is the first
        version). Returns what happened, for logs and job results."""
        promoted = self.registry.promoted(candidate.name)
        if dataset is not None and dataset.is_dir():  # a first version is measured too, and passes
            verdict = gate.judge(
                self.registry.bundle_dir(candidate.name, candidate.version),
                self.registry.bundle_dir(promoted.name, promoted.version) if promoted else None,
                dataset,
                policy,
            )
        else:
            verdict = {"passed": True, "why": "no promoted version yet" if not promoted else "no dataset to judge on"}
        self.registry.decide(candidate, verdict["passed"], verdict)
        if not verdict["passed"]:
            return f"{candidate.version} rejected: {verdict['why']}"
        groups = canary if promoted else None  # a first version goes to everyone
        self.promote(candidate.name, candidate.version, groups)
        where = f"groups {', '.join(groups)} (canary)" if groups else "the fleet"
        return f"{candidate.version} promoted to {where}: {verdict['why']}"

    def widen(self, name: str) -> Version:
        with self._lock:
            current = self._promoted(name)
            self.registry.set_promoted(current, None)
            self.announce(current, None)
        return self.registry.get(name, current.version)

    def rollback(self, name: str) -> Version:
        with self._lock:
            current, previous = self._promoted(name), self.registry.previous(name)
            if previous is None:
                raise RegistryError(f"{name} has no earlier promoted version to roll back to")
            self.registry.set_promoted(previous, None)
            self.registry.set_state(current, "rejected")
            self.announce(previous, None)
        log.warning("rolled %s back from %s to %s", name, current.version, previous.version)
        return self.registry.get(name, previous.version)

    def canary_ready(self, name: str, stale_s: float = 120) -> bool:
        """True when a canary's groups have online devices and all of them run the version."""
        current = self.registry.promoted(name)
        if current is None or not current.rollout_groups:
            return False
        running = device_store.online_versions(self.registry.db, current.rollout_groups, name, time.time() - stale_s)
        return bool(running) and all(v == current.version for v in running)

    def _promoted(self, name: str) -> Version:
        current = self.registry.promoted(name)
        if current is None:
            raise RegistryError(f"{name} has no promoted version")
        return current
