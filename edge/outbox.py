"""The outbox: every message that must reach the broker is written here first, and removed only
when the broker has acknowledged it. A broker outage (or a restart of the device) therefore loses
nothing within the bounds; past them the oldest messages are dropped and counted. It also keeps
the prediction sequence number, so `seq` continues across restarts. A disk nearly full counts as
a full outbox too: SQLite cannot even delete once the disk is full, so room is made while it still can.
A prediction is kept as an item of a batch with its `seq` (edge.batching packs them into messages);
a row without one is a whole message, sent as it is (an outbox written before batching holds those)."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger(__name__)

MIN_FREE_BYTES = 1024 * 1024  # below this free on its disk, the outbox stops growing: the oldest make room
LOG_EVERY_S = 10.0
WAL_PAGES = 128  # checkpoint the WAL this often, so that what it holds always fits in MIN_FREE_BYTES

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    created REAL NOT NULL,
    seq INTEGER
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class Message(NamedTuple):
    """A row as read back; a tuple, as a drained backlog reads thousands of them a second."""

    id: int
    topic: str
    payload: bytes
    qos: int
    created: float  # Unix seconds, when it was stored
    seq: int | None  # a prediction's, stored as an item of a batch (Prediction.batched)


class Outbox:
    def __init__(self, path: Path, max_messages: int = 100_000, max_age_s: float = 7 * 86400) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.max_messages = max_messages
        self.max_age_s = max_age_s
        self.path = Path(path)
        self._unlogged, self._logged = 0, 0.0
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")
        self._db.executescript(_SCHEMA)
        if "seq" not in {row[1] for row in self._db.execute("PRAGMA table_info(messages)")}:
            self._db.execute("ALTER TABLE messages ADD COLUMN seq INTEGER")  # an outbox from before batching
        # Kept with each commit: counting a backlog's rows costs ms each time (a full scan), and every append
        # and every poll of the depth would pay it.
        self._rows = self._count()

    def counter(self, name: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return row[0] if row else 0

    def append(self, messages: list[tuple[str, bytes, int, int | None]], counters: dict[str, int] | None = None) -> int:
        """Store messages (topic, payload, qos, seq or None) and counter values in one transaction; returns
        how many old ones were dropped."""
        now = time.time()
        with self._lock:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT INTO messages (topic, payload, qos, created, seq) VALUES (?, ?, ?, ?, ?)",
                    [(topic, payload, qos, now, seq) for topic, payload, qos, seq in messages],
                )
                for name, value in (counters or {}).items():
                    self._set(name, value)
                dropped = self._enforce_bounds(now, len(messages))
            self._rows += len(messages) - dropped
        if dropped and self._disk_low():
            with self._lock:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # give the WAL's space back
        self._unlogged += dropped
        if self._unlogged and now - self._logged >= LOG_EVERY_S:  # a full disk must not fill up with log lines
            log.warning("outbox full or stale: dropped %d oldest messages", self._unlogged)
            self._unlogged, self._logged = 0, now
        return dropped

    def _set(self, name: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def _disk_low(self) -> bool:
        disk = os.statvfs(self.path.parent)
        return disk.f_bavail * disk.f_frsize < MIN_FREE_BYTES

    def _enforce_bounds(self, now: float, added: int) -> int:
        dropped = self._db.execute("DELETE FROM messages WHERE created < ?", (now - self.max_age_s,)).rowcount
        excess = self._rows + added - dropped - self.max_messages
        if self._disk_low():
            excess = max(excess, added)
        if excess > 0:
            dropped += self._db.execute(
                "DELETE FROM messages WHERE id IN (SELECT id FROM messages ORDER BY id LIMIT ?)", (excess,)
            ).rowcount
        if dropped:
            total = self._db.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
            self._set("dropped", (total[0] if total else 0) + dropped)
        return dropped

    def _count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]

    def pending(self, after_id: int = 0, limit: int = 1000) -> list[Message]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, qos, created, seq FROM messages WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [Message._make(row) for row in rows]

    def remove(self, ids: list[int]) -> None:
        """Delete these rows; a batch's are consecutive ids, deleted as one range."""
        if not ids:
            return
        ranges: list[list[int]] = []
        for i in sorted(ids):
            if ranges and i == ranges[-1][1] + 1:
                ranges[-1][1] = i
            else:
                ranges.append([i, i])
        with self._lock:
            with self._db:
                self._db.execute("BEGIN")
                deleted = self._db.executemany("DELETE FROM messages WHERE id BETWEEN ? AND ?", ranges).rowcount
            self._rows -= deleted

    def __len__(self) -> int:
        with self._lock:
            return self._rows

    def close(self) -> None:
        with self._lock:
            self._db.close()
