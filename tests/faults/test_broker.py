"""The broker restarted (and, under `make soak`, away for 60 s) while a real device publishes a
30 fps camera to a real aggregator: the device's outbox and both persistent sessions carry every
prediction through, and the store holds each exactly once."""

import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.camera import FPS
from tests.support.device import edge_command
from tests.support.faults import Aggregator, recovery, stored
from tests.support.paths import ROOT
from tests.support.waiting import wait_for


def device_seq(state: Path) -> int:
    """The last seq the device gave a prediction (its outbox keeps the counter)."""
    try:
        with sqlite3.connect(f"file:{state / 'outbox-cam-1.sqlite'}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()
    except sqlite3.Error:
        return 0
    return row[0] if row else 0


@pytest.mark.parametrize(
    "down_s", [pytest.param(3, id="restart"), pytest.param(60, id="outage-60s", marks=pytest.mark.soak)]
)
def test_broker_down_while_a_device_publishes_at_30_fps(
    down_s, tiny_bundle, camera, broker, tmp_path, fault_report
) -> None:
    db, state = f"sqlite:///{tmp_path / 'edgeloop.db'}", tmp_path / "state"
    frames = FPS * (down_s + 12)  # about 5 s before the fault, the fault, 7 s after
    aggregator = Aggregator(broker, db, tmp_path / "data").start()
    with open(tmp_path / "edge.log", "w") as log:
        edge = None
        try:
            aggregator.await_session()
            command = edge_command(tiny_bundle, camera, broker.url, state, "--max-frames", frames)
            edge = subprocess.Popen(command, cwd=ROOT, stderr=log)
            wait_for(lambda: stored(db) >= 4 * FPS, 60, "4 s of predictions stored")
            broker.stop()
            time.sleep(down_s)
            broker.start()
            back, sent_before = time.monotonic(), device_seq(state)
            recovery_s = recovery(db, sent_before, back)
            assert edge.wait(60 + down_s) == 0, (tmp_path / "edge.log").read_text()[-3000:]
            row = aggregator.outcome(f"broker down {down_s} s, device at {FPS} fps", device_seq(state), recovery_s)
        finally:
            if edge is not None and edge.poll() is None:
                edge.kill()
            aggregator.stop()
    fault_report.append(row)
    assert row.sent == frames, "every frame classified got a seq"
    assert (row.lost, row.duplicated) == (0, 0)
    assert recovery_s is not None
