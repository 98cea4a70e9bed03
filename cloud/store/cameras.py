"""The cameras table: a row per named camera of a device (a device with several names each of them on the
wire; one with a single camera names none and has no row). Its predictions stored and when the last of
them arrived are kept by the writer in the batch's transaction, as the devices' counters are, so listing
the fleet's cameras costs their number at any history; its fps, frames dropped and reopens are what its
device's latest telemetry said."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cloud.store.cursor import Cursor
from cloud.store.db import Database

# MAX2 of a NULL is NULL on SQLite and the other value on PostgreSQL: the COALESCE makes both the latter.
_TOUCH = """INSERT INTO cameras (device_id, camera, predictions, last_seen) VALUES (?, ?, ?, ?)
    ON CONFLICT (device_id, camera) DO UPDATE SET predictions = cameras.predictions + excluded.predictions,
    last_seen = COALESCE(MAX2(cameras.last_seen, excluded.last_seen), excluded.last_seen)"""

_REPORT = """INSERT INTO cameras (device_id, camera, fps, dropped, reopens) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (device_id, camera) DO UPDATE SET fps = excluded.fps, dropped = excluded.dropped,
    reopens = excluded.reopens"""

_COLUMNS = "device_id, camera, predictions, last_seen, fps, dropped, reopens"


@dataclass(frozen=True)
class Camera:
    device_id: str
    camera: str
    predictions: int  # stored, all time
    last_seen: float | None  # when its newest stored prediction arrived; None: only telemetry named it
    fps: float | None  # its device's latest telemetry: frames classified per second
    dropped: float | None  # … frames captured and replaced by a newer one before inference took them
    reopens: float | None  # … times its source was opened again after it failed


def touch(cur: Cursor, stored: Mapping[tuple[str, str], int], at: float) -> None:
    """Predictions stored at `at`, by (device id, camera): added to their cameras' counters, in key order
    (two writers then lock the same rows in the same order)."""
    cur.executemany(_TOUCH, [(device_id, camera, n, at) for (device_id, camera), n in sorted(stored.items())])


def report(cur: Cursor, device_id: str, figures: Mapping[str, Mapping[str, float]]) -> None:
    """A device's latest telemetry, by camera name: each camera's figures replace the ones it had."""
    cur.executemany(
        _REPORT,
        [
            (device_id, camera, f.get("fps"), f.get("dropped"), f.get("reopens"))
            for camera, f in sorted(figures.items())
        ],
    )


def fleet(db: Database) -> dict[str, list[Camera]]:
    """Each device's named cameras, by device id and then by name (a device without any is left out)."""
    cameras: dict[str, list[Camera]] = {}
    for row in db.query(f"SELECT {_COLUMNS} FROM cameras ORDER BY device_id, camera"):
        camera = Camera(*row)
        cameras.setdefault(camera.device_id, []).append(camera)
    return cameras


def get(db: Database, device_id: str, camera: str) -> Camera | None:
    rows = db.query(f"SELECT {_COLUMNS} FROM cameras WHERE device_id = ? AND camera = ?", (device_id, camera))
    return Camera(*rows[0]) if rows else None
