"""The devices table: one row per device, upserted from what it sends (its predictions mark it seen
and keep its counters, its status and telemetry fill the rest), and read for the fleet table, a window and a canary."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from cloud.store.cursor import Cursor
from cloud.store.db import Database

_COLUMNS = "device_id, state, last_seen, model_name, model_version, device_group, backend, fps, message"

# The counters are kept by the writer (touch), so the fleet table costs one row per device at any history.
_FLEET = f"""SELECT {_COLUMNS}, predictions, COALESCE(first_seq, 0), COALESCE(last_seq, 0), duplicates
    FROM devices ORDER BY device_id"""

# MIN2/MAX2 of a NULL is NULL on SQLite and the other value on PostgreSQL: the COALESCE makes both the latter.
_TOUCH = """INSERT INTO devices (device_id, last_seen, model_name, model_version, predictions, first_seq, last_seq,
    duplicates) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (device_id) DO UPDATE SET last_seen = MAX2(devices.last_seen, excluded.last_seen),
    model_name = excluded.model_name, model_version = excluded.model_version,
    predictions = devices.predictions + excluded.predictions,
    first_seq = COALESCE(MIN2(devices.first_seq, excluded.first_seq), devices.first_seq, excluded.first_seq),
    last_seq = COALESCE(MAX2(devices.last_seq, excluded.last_seq), devices.last_seq, excluded.last_seq),
    duplicates = devices.duplicates + excluded.duplicates"""


class Seen(NamedTuple):
    """A device's predictions in one committed batch: the model of its newest, how many were stored, the
    lowest and highest seq stored (None when none was), and how many were there already."""

    device_id: str
    model_name: str
    model_version: str
    stored: int
    first_seq: int | None
    last_seq: int | None
    duplicates: int


@dataclass(frozen=True)
class Device:
    device_id: str
    state: str  # online, offline, … as its status said; unknown before its first status
    last_seen: float
    model_name: str | None
    model_version: str | None
    device_group: str | None
    backend: str | None
    fps: float | None  # what its telemetry last reported
    message: str | None


@dataclass(frozen=True)
class FleetDevice(Device):
    """A device with its counters: predictions stored, the lowest and highest seq (0 without any), and
    predictions received again and not stored."""

    predictions: int
    first_seq: int
    last_seq: int
    duplicates: int

    @property
    def missing(self) -> int:
        """Gaps in seq: what the device sent between its lowest and highest stored seq that never arrived."""
        return self.last_seq - self.first_seq + 1 - self.predictions if self.predictions else 0


def touch(cur: Cursor, seen: Iterable[Seen], at: float) -> None:
    """Devices whose predictions arrived at `at`: seen then, and their counters added to (in the batch's
    transaction, in device order)."""
    cur.executemany(_TOUCH, [(s.device_id, at, s.model_name, s.model_version, *s[3:]) for s in seen])


def upsert(cur: Cursor, device_id: str, last_seen: float, values: Mapping[str, Any]) -> None:
    """Set the columns named in `values` (and last_seen), creating the row if it is new."""
    names = ["device_id", "last_seen", *values]
    placeholders = ", ".join("?" for _ in names)
    assignments = ", ".join(f"{name} = excluded.{name}" for name in ["last_seen", *values])
    cur.execute(
        f"INSERT INTO devices ({', '.join(names)}) VALUES ({placeholders}) "
        f"ON CONFLICT (device_id) DO UPDATE SET {assignments}",
        (device_id, last_seen, *values.values()),
    )


def fleet(db: Database) -> list[FleetDevice]:
    """Every device, by id."""
    return [FleetDevice(*row) for row in db.query(_FLEET)]


def get(db: Database, device_id: str) -> Device | None:
    rows = db.query(f"SELECT {_COLUMNS} FROM devices WHERE device_id = ?", (device_id,))
    return Device(*rows[0]) if rows else None


def ids(db: Database) -> list[str]:
    return [device_id for (device_id,) in db.query("SELECT device_id FROM devices")]


def online_versions(db: Database, groups: Sequence[str], model_name: str, seen_since: float) -> list[str]:
    """The versions of `model_name` that the online devices of `groups` seen since `seen_since` run, one per device."""
    marks = ", ".join("?" for _ in groups)
    rows = db.query(
        f"SELECT model_version FROM devices WHERE device_group IN ({marks}) AND state = 'online' "
        "AND model_name = ? AND last_seen >= ?",
        (*groups, model_name, seen_since),
    )
    return [version for (version,) in rows]


def telemetry(db: Database) -> list[tuple[str, str]]:
    """Each device's latest telemetry as it arrived (JSON), by id: one row per device that sent any."""
    return list(db.query("SELECT device_id, telemetry FROM devices WHERE telemetry IS NOT NULL ORDER BY device_id"))
