"""What the device-side fault tests count: the outbox read from outside the device, the seqs that
reached the broker, and the row each fault adds to the report (tests/support/fault_report.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.support.device import seqs
from tests.support.fault_report import Row
from tests.support.waiting import wait_for


def outbox_counters(state: Path, device_id: str = "cam-1") -> dict[str, int]:
    """The outbox's counters (seq, dropped) and its length, read as another process would."""
    db = sqlite3.connect(f"file:{state / f'outbox-{device_id}.sqlite'}?mode=ro", uri=True, timeout=5)
    try:
        counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
        counters["pending"] = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        return counters
    finally:
        db.close()


def delivered(recorder, state: Path) -> tuple[dict[str, int], list[int]]:
    """Once the device has stopped: its outbox's counters and the seqs that arrived, its last one included."""
    end = outbox_counters(state)
    wait_for(lambda: max(seqs(recorder), default=0) == end["seq"], 20, "the device's last prediction")
    return end, seqs(recorder)


def device_row(fault: str, sent: int, arrived: list[int], dropped: int, recovery_s: float) -> Row:
    """A fault's row in the report, counted at the broker (no aggregator runs): of the seqs 1..sent
    the device made, the distinct ones that arrived and how many arrived twice or more."""
    made = [seq for seq in arrived if 1 <= seq <= sent]
    return Row(fault, sent, len(set(made)), len(made), None, round(recovery_s, 2), dropped)
