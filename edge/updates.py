"""Model updates without a restart: the device follows its model's retained announcement, downloads
the bundle over HTTP(S), checks the archive's sha256, unpacks and verifies every file, loads and
warms it up beside the running model, and swaps between two frames. Any failure leaves the running
model in place, with a log line and a status message. The last accepted bundle is remembered, so a
restart runs it again. An announcement for some device groups (a canary) applies only to their
devices; the others keep what they run. A device given the registry's public key runs only
bundles whose announcement carries the registry's signature."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import shutil
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path

from common import bundle, protocol
from common.redact import redact, redact_urls
from common.signing import Verifier
from edge.classifier import Classifier

log = logging.getLogger(__name__)

MAX_DOWNLOAD_BYTES = 1024**3
TIMEOUT_S = 60
CURRENT = "current.json"


class UpdateError(Exception):
    pass


def download(url: str, target: Path, sha256: str) -> Path:
    """Fetch `url` to `target` (through a .part file) and check its sha256 on the way."""
    shown = redact(url)
    if not url.startswith(("http://", "https://")):
        raise UpdateError(f"refusing to download from {shown!r}: only http(s)")
    digest = hashlib.sha256()
    part = target.with_name(target.name + ".part")
    size = 0
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(part, "wb") as out:
            while chunk := response.read(1 << 20):
                size += len(chunk)
                if size > MAX_DOWNLOAD_BYTES:
                    raise UpdateError(f"{shown} is larger than {MAX_DOWNLOAD_BYTES} bytes")
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            raise UpdateError(f"{shown} does not match the announced sha256 (got {digest.hexdigest()[:12]}…)")
        os.replace(part, target)
    except OSError as exc:
        raise UpdateError(f"cannot download {shown}: {exc}") from exc
    finally:
        part.unlink(missing_ok=True)
    return target


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
        group: str | None = None,
        verifier: Verifier | None = None,
    ) -> None:
        super().__init__(name="model-updates", daemon=True)
        self.dir = state_dir / "models"
        self.dir.mkdir(parents=True, exist_ok=True)
        clear_leftovers(self.dir)
        self.state_dir = state_dir
        self.backend = backend
        self.current = current
        self.swap = swap
        self.report = report
        self.group = group
        self.verifier = verifier
        self.counts = {"announcements": 0, "swapped": 0, "rejected": 0}
        self._queue: queue.Queue[bytes | None] = queue.Queue()

    def on_announcement(self, payload: bytes) -> None:
        self._queue.put(payload)

    def stop(self) -> None:
        self._queue.put(None)

    def run(self) -> None:
        while (payload := self._queue.get()) is not None:
            self.counts["announcements"] += 1
            try:
                self._apply(protocol.Announcement.decode(payload))
            except Exception as exc:  # whatever fails (download, checks, loading on this device): keep running
                self.counts["rejected"] += 1
                log.error("model update rejected, the running model stays: %s", exc)
                self.report(f"rejected model update: {redact_urls(str(exc))}")

    def _apply(self, announced: protocol.Announcement) -> None:
        running = self.current().bundle.meta
        if announced.name != running.name:
            raise UpdateError(f"announcement for model {announced.name!r}, this device runs {running.name!r}")
        if announced.version == running.version:
            return
        if not announced.applies_to(self.group):
            log.info("%s %s is announced to groups %s, not this device's (%s)", announced.name, announced.version,
                     announced.groups, self.group)  # fmt: skip
            return
        protocol.check_id(announced.version, "model version")
        if self.verifier:
            self.verifier.verify(announced.name, announced.version, announced.sha256, announced.signature)
        log.info("model %s %s announced; fetching %s", announced.name, announced.version, redact(announced.url))
        archive = download(announced.url, self.dir / f"{announced.name}-{announced.version}.tar.gz", announced.sha256)
        try:
            unpacked = bundle.unpack(archive, self.dir / f"{announced.name}-{announced.version}")
        finally:
            archive.unlink(missing_ok=True)
        if unpacked.meta.version != announced.version or unpacked.meta.name != announced.name:
            raise UpdateError(f"the bundle is {unpacked.meta.name} {unpacked.meta.version}, not what was announced")
        self.swap(Classifier(unpacked, self.backend))  # loaded and warmed up before the swap
        remember(self.state_dir, unpacked.path)
        self.counts["swapped"] += 1
        log.info("now running %s %s", announced.name, announced.version)
        self.report(None)
