"""Which model announcements a device believes. An announcement makes the device download and run
code, so by default it must be signed by a trusted key over every field, not expired, and newer
than the last one the device acted on: its serial may not be below that one's (kept in the state
directory, across restarts), so a replayed older announcement cannot downgrade the device. The
same serial again is the same announcement redelivered (a retained message comes again on every
reconnect) and is handled as before. A rollback is a new announcement of an older version, with a
higher serial, and is accepted like any other."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from common import protocol
from common.signing import SignatureError, Verifier

log = logging.getLogger(__name__)

SERIALS = "announcements.json"


class Refused(Exception):
    """A model update the device will not run. `reason` is a short class (what status messages and
    counters show: never what a server sent); the message is the detail for the log."""

    def __init__(self, reason: str, detail: str, retry: bool = False) -> None:
        super().__init__(detail)
        self.reason = reason
        self.retry = retry  # the same announcement may well succeed later (a server down, a network cut)


class Serials:
    """The serial of the last announcement acted on, per model, in one small JSON file."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / SERIALS
        try:
            loaded = json.loads(self.path.read_text())
            self._serials = {str(k): int(v) for k, v in loaded.items()}
        except FileNotFoundError:
            self._serials = {}
        except (ValueError, TypeError, AttributeError, OSError) as exc:
            log.warning("ignoring %s (%s): announcements of any serial are accepted until the next one", self.path, exc)
            self._serials = {}

    def last(self, name: str) -> int | None:
        return self._serials.get(name)

    def accept(self, name: str, serial: int) -> None:
        """Remember `serial` (synced to disk before it counts: a power cut must not undo it)."""
        if self._serials.get(name, -1) >= serial:
            return
        self._serials[name] = serial
        tmp = self.path.with_name(f".{SERIALS}.tmp")
        with open(tmp, "w") as out:
            json.dump(self._serials, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)


class Gate:
    """Checks each announcement's signature, expiry and serial before anything is downloaded."""

    def __init__(
        self,
        state_dir: Path,
        verifier: Verifier | None,
        allow_unsigned: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.verifier = verifier
        self.allow_unsigned = allow_unsigned
        self.serials = Serials(state_dir)
        self.clock = clock

    def check(self, payload: bytes) -> protocol.Announcement:
        """The announcement in `payload` if the device may act on it; Refused otherwise."""
        try:
            fields = json.loads(payload)
        except ValueError as exc:
            raise Refused("malformed", f"the announcement is not JSON: {exc}") from exc
        if not isinstance(fields, dict):
            raise Refused("malformed", "the announcement is not a JSON object")
        self._check_signature(fields)
        try:  # parsed from exactly the fields checked: a key given twice cannot slip past the signature
            announcement = protocol.Announcement.decode(json.dumps(fields))
        except protocol.ProtocolError as exc:
            raise Refused("malformed", str(exc)) from exc
        what = f"{announcement.name} {announcement.version} (serial {announcement.serial})"
        if announcement.expires.timestamp() <= self.clock():
            raise Refused("expired", f"{what} expired at {announcement.expires.isoformat()}")
        last = self.serials.last(announcement.name)
        if last is not None and announcement.serial < last:
            raise Refused("replayed", f"{what} is older than the last announcement acted on (serial {last})")
        return announcement

    def accept(self, announcement: protocol.Announcement) -> None:
        """The device acted on it: from now on, older announcements are refused."""
        self.serials.accept(announcement.name, announcement.serial)

    def _check_signature(self, fields: dict) -> None:
        if not fields.get("signature"):
            if not self.allow_unsigned:
                raise Refused("unsigned", "the announcement is not signed, and this device runs only signed models")
            log.warning("INSECURE: acting on an unsigned model announcement (--allow-unsigned-models)")
        elif self.verifier is not None:
            try:
                self.verifier.verify(fields)
            except SignatureError as exc:
                raise Refused("bad_signature", f"the announcement's signature does not verify: {exc}") from exc
