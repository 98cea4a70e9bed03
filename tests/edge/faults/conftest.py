"""Helpers of the device-side fault tests: a small disk the test mounts, the outbox read from
outside the device, and the row each test adds to the fault report (tests/faults/report.py)."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.broker import wait_for
from tests.edge.running import seqs
from tests.faults.report import Row


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 4 MiB tmpfs: a disk the test can fill and free without touching the machine's own."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


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
