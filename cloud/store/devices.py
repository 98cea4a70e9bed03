"""The devices table: one row per device, upserted from what it sends (its predictions mark it seen,
its status and telemetry fill the rest), and read for the fleet table, a window and a canary."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cloud.store.db import Cursor, Database

_COLUMNS = "device_id, state, last_seen, model_name, model_version, device_group, backend, fps, message"

# The prediction counts come from one grouped pass, joined so a device without predictions is listed too.
_FLEET = f"""SELECT {", ".join("d." + c for c in _COLUMNS.split(", "))},
    COALESCE(p.n, 0), COALESCE(p.lo, 0), COALESCE(p.hi, 0)
    FROM devices d LEFT JOIN (
        SELECT device_id, COUNT(*) AS n, MIN(seq) AS lo, MAX(seq) AS hi FROM predictions GROUP BY device_id
    ) p ON p.device_id = d.device_id ORDER BY d.device_id"""

_TOUCH = """INSERT INTO devices (device_id, last_seen, model_name, model_version) VALUES (?, ?, ?, ?)
    ON CONFLICT (device_id) DO UPDATE SET last_seen = MAX2(devices.last_seen, excluded.last_seen),
    model_name = excluded.model_name, model_version = excluded.model_version"""


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
    """A device with its stored predictions: how many, and the lowest and highest seq (0 without any)."""

    predictions: int
    first_seq: int
    last_seq: int


def touch(cur: Cursor, seen: Iterable[tuple[str, str, str]], at: float) -> None:
    """(device_id, model_name, model_version) of devices whose predictions arrived at `at`."""
    cur.executemany(_TOUCH, [(device_id, at, name, version) for device_id, name, version in seen])


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
