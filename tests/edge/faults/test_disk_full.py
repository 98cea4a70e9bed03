"""The device's disk fills while the broker is away: it keeps classifying, the outbox drops its
oldest predictions and counts them (and, once not a byte is left, the newest are counted as lost
without a log line each), and once space and the broker are back it publishes again with `seq`
continuing; every prediction is either delivered or counted as dropped."""

import contextlib
import json
import os
import signal
import time

from edge.outbox import MIN_FREE_BYTES
from edge.publisher import WINDOW
from tests.support.device import seqs, start_edge
from tests.support.device_faults import delivered, device_row, outbox_counters
from tests.support.waiting import wait_for


def free_bytes(path) -> int:
    disk = os.statvfs(path)
    return disk.f_bavail * disk.f_frsize


def test_a_full_disk_drops_the_oldest_counted_and_recovers(
    tiny_bundle, video, broker, recorder, small_disk, tmp_path, fault_report
) -> None:
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (free_bytes(small_disk) - MIN_FREE_BYTES - 400_000))  # 400 kB left for the outbox
    state = small_disk / "state"
    edge = start_edge(tiny_bundle, video, broker, state, "--loop")
    try:
        wait_for(lambda: len(seqs(recorder)) >= 50, 60, "predictions before the outage")
        broker.stop()
        wait_for(lambda: outbox_counters(state).get("dropped", 0) > 0, 60, "the outbox to fill the disk")
        full = outbox_counters(state)
        time.sleep(3)
        later = outbox_counters(state)
        assert edge.poll() is None, "the device died on a full disk"
        assert later["seq"] > full["seq"] + 100, "the device stopped classifying on a full disk"
        assert later["dropped"] > full["dropped"], "the oldest make room for the newest"
        assert free_bytes(small_disk) > 0

        # Something else takes the last byte: the outbox cannot even make room now; the device runs on.
        rest = small_disk / "rest"
        with contextlib.suppress(OSError), rest.open("wb", buffering=0) as out:
            while True:
                out.write(b"\0" * 4096)
        time.sleep(3)
        assert edge.poll() is None, "the device died on a disk with no byte left"
        rest.unlink()
        filler.unlink()
        reports = len(recorder.on("/telemetry"))
        broker.start()
        restored = time.monotonic()
        wait_for(lambda: outbox_counters(state)["pending"] < 50, 60, "the outbox to drain")
        recovery_s = time.monotonic() - restored
        wait_for(lambda: len(recorder.on("/telemetry")) > reports, 10, "telemetry after the recovery")
        edge.send_signal(signal.SIGTERM)
        assert edge.wait(30) == 0
    finally:
        edge.kill()
    end, received = delivered(recorder, state)
    # Every prediction that did not arrive was dropped and counted (by the outbox, or by the publisher
    # while not a byte was left); a dropped one that paho already held (sent before the broker went
    # away, not yet acknowledged) may still arrive.
    telemetry = json.loads(recorder.on("/telemetry")[-1].payload)
    dropped = end["dropped"] + telemetry["mqtt"]["dropped"]
    row = device_row("disk full, broker away (device outbox)", end["seq"], received, dropped, recovery_s)
    fault_report.append(row)
    assert dropped - WINDOW <= row.missing <= dropped
    assert row.missing > 0
    assert end["pending"] == 0
    missing = set(range(1, end["seq"] + 1)) - set(received)
    assert not missing & set(range(later["seq"] - 100, later["seq"] + 1)), "the oldest went first: the newest arrive"
