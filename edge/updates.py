"""Model updates without a restart: the device follows its model's retained announcement, checks
it (signature, expiry, serial: announcements.py), downloads the bundle from the trusted origin
(downloads.py), unpacks and verifies every file, loads and warms it up beside the running model,
and swaps between two frames. Any failure leaves the running model in place, with a log line, a
count by reason and a status message that names only the reason; a download that may pass later (the
server down or failing) is tried again with backoff, not only when the announcement comes again.
The last accepted bundle is remembered, so a restart runs it again. An announcement for some device
groups (a canary) applies only to their devices; the others keep what they run."""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from common import bundle, protocol
from common.redact import redact
from edge.announcements import Gate, Refused
from edge.classifier import Classifier
from edge.downloads import download

log = logging.getLogger(__name__)

CURRENT = "current.json"
RETRY_MIN_S = 5.0
RETRY_MAX_S = 300.0


def remembered(state_dir: Path) -> Path | None:
    """The bundle the device last switched to, if it is still complete and intact."""
    try:
        path = Path(json.loads((state_dir / CURRENT).read_text())["bundle"])
        bundle.load(path)
        return path
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, OSError, bundle.BundleError) as exc:
        log.warning("ignoring the remembered model: %s", exc)
        return None


def remember(state_dir: Path, path: Path) -> None:
    tmp = state_dir / f".{CURRENT}.tmp"
    tmp.write_text(json.dumps({"bundle": str(path)}))
    os.replace(tmp, state_dir / CURRENT)


def clear_leftovers(models: Path) -> None:
    """What an update cut short by a power loss left (a partial download, a half-unpacked bundle)
    would fill a small disk one crash at a time; no complete bundle is among them."""
    for leftover in [*models.glob("*.part"), *models.glob("*/.unpack-*"), *models.glob("*/.old-*")]:
        log.info("removing %s, left by an interrupted update", leftover)
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


class ModelUpdater(threading.Thread):
    """Works through announcements one at a time, off the network and inference threads."""

    def __init__(
        self,
        state_dir: Path,
        backend: str,
        current: Callable[[], Classifier],
        swap: Callable[[Classifier], None],
        report: Callable[[str | None], None],
        gate: Gate,
        group: str | None = None,
        origin: str | None = None,
        retry_s: tuple[float, float] = (RETRY_MIN_S, RETRY_MAX_S),
    ) -> None:
        """A download that may pass later is tried again after `retry_s[0]` seconds, twice as long each
        time up to `retry_s[1]`, until it passes or a newer announcement comes."""
        super().__init__(name="model-updates", daemon=True)
        self.dir = state_dir / "models"
        self.dir.mkdir(parents=True, exist_ok=True)
        clear_leftovers(self.dir)
        self.state_dir = state_dir
        self.backend = backend
        self.current = current
        self.swap = swap
        self.report = report
        self.gate = gate
        self.group = group
        self.origin = origin
        self.retry_s = retry_s
        self.counts = {"announcements": 0, "swapped": 0, "rejected": 0, "retries": 0}
        self.rejected: Counter[str] = Counter()
        self._queue: queue.Queue[bytes | None] = queue.Queue()

    def on_announcement(self, payload: bytes) -> None:
        self._queue.put(payload)

    def stop(self) -> None:
        self._queue.put(None)

    def figures(self) -> dict[str, int]:
        """For telemetry: the counts, and the rejections by reason."""
        return {**self.counts, **{f"rejected {reason}": n for reason, n in self.rejected.items()}}

    def run(self) -> None:
        pending: bytes | None = None  # an announcement whose download may pass later: tried again after `delay`
        delay = self.retry_s[0]
        while True:
            try:
                payload = self._queue.get(timeout=delay if pending is not None else None)
                delay = self.retry_s[0]  # a new announcement (or the same one again, on a reconnect) starts afresh
            except queue.Empty:
                payload, delay = pending, min(delay * 2, self.retry_s[1])
                self.counts["retries"] += 1
            if payload is None:
                return
            pending = payload if self._handle(payload, retry=payload is pending) else None
            if pending is not None:
                log.warning("trying the model download again in %.0f s", delay)

    def _handle(self, payload: bytes, retry: bool = False) -> bool:
        """Act on one announcement; True when it failed in a way that may pass later (tried again, and
        counted as rejected only if it stops being tried: a retry is neither a new announcement nor a new
        rejection)."""
        if not retry:
            self.counts["announcements"] += 1
        try:
            announced = self.gate.check(payload)
            self._apply(announced)
            self.gate.accept(announced)
        except Exception as exc:  # whatever fails (checks, download, loading on this device): keep running
            reason = exc.reason if isinstance(exc, Refused) else "load_failed"
            again = isinstance(exc, Refused) and exc.retry
            if not again:
                self.counts["rejected"] += 1
                self.rejected[reason] += 1
            log.error("model update rejected (%s), the running model stays: %s", reason, exc)
            self.report(f"rejected model update: {reason}")
            return again
        return False

    def _apply(self, announced: protocol.Announcement) -> None:
        running = self.current().bundle.meta
        if announced.name != running.name:
            raise Refused(
                "wrong_model", f"announcement for model {announced.name!r}, this device runs {running.name!r}"
            )
        if announced.version == running.version:
            return
        if not announced.applies_to(self.group):
            log.info("%s %s is announced to groups %s, not this device's (%s)", announced.name, announced.version,
                     announced.groups, self.group)  # fmt: skip
            return
        try:
            protocol.check_id(announced.version, "model version")
        except protocol.ProtocolError as exc:
            raise Refused("malformed", str(exc)) from exc
        log.info("model %s %s announced; fetching %s", announced.name, announced.version, redact(announced.url))
        folder = self.dir / f"{announced.name}-{announced.version}"
        archive = folder.with_name(f"{folder.name}.tar.gz")
        download(announced.url, archive, announced.sha256, self.origin)
        try:
            unpacked = bundle.unpack(archive, folder)
        except bundle.BundleError as exc:
            raise Refused("bad_bundle", str(exc)) from exc
        finally:
            archive.unlink(missing_ok=True)
        try:
            classifier = self._load(announced, unpacked)
        except Exception:
            shutil.rmtree(folder, ignore_errors=True)  # a model this device refuses is kept nowhere on it
            raise
        self.swap(classifier)
        remember(self.state_dir, unpacked.path)
        self.counts["swapped"] += 1
        log.info("now running %s %s", announced.name, announced.version)
        self.report(None)

    def _load(self, announced: protocol.Announcement, unpacked: bundle.Bundle) -> Classifier:
        """The bundle as announced, loaded and warmed up beside the running model."""
        if unpacked.meta.version != announced.version or unpacked.meta.name != announced.name:
            raise Refused("bad_bundle", f"the bundle is {unpacked.meta.name} {unpacked.meta.version}, not as announced")
        try:
            return Classifier(unpacked, self.backend)
        except bundle.BundleError as exc:  # files changed since unpacking, or ops no inference needs
            raise Refused("bad_bundle", str(exc)) from exc
