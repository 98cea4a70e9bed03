"""What the fault tests share: a fleet paced in real time, counting what a store holds, waiting for the
aggregator's session, timing a recovery, and the outcome of a fault as a row of the report
(tests/support/fault_report.py)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from tests.support.fault_report import Row
from tests.support.fleet import Publisher
from tests.support.ports import free_port
from tests.support.serve import metric, start_serve
from tests.support.waiting import wait_for

WARM_UP = "warm-up"  # the device that knocks until the aggregator's session exists; left out of the counts
RATE = 300  # predictions per second per device
PER_MESSAGE = 10  # predictions per message: batched, as devices send them by default


def paced(seqs: range, progress: dict[str, int], device: str):
    """The seqs at RATE a second, `progress[device]` the last one handed to the broker."""
    start = time.monotonic()
    for i, seq in enumerate(seqs):
        time.sleep(max(start + i / RATE - time.monotonic(), 0))
        yield seq
        progress[device] = seq


def store_counts(db_url: str) -> tuple[int, int] | None:
    """(rows, distinct (device_id, seq)) of the devices' predictions; None while the database is away."""
    query = (
        f"SELECT (SELECT COUNT(*) FROM predictions WHERE device_id <> '{WARM_UP}'), (SELECT COUNT(*) FROM "
        f"(SELECT DISTINCT device_id, seq FROM predictions WHERE device_id <> '{WARM_UP}') AS d)"
    )
    try:
        if db_url.startswith("sqlite:///"):
            with sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=5) as conn:
                return conn.execute(query).fetchone()
        import psycopg

        with psycopg.connect(db_url, connect_timeout=2) as conn:
            return conn.execute(query).fetchone()
    except Exception:  # not created yet, or the server is down
        return None


def stored(db_url: str) -> int:
    return (store_counts(db_url) or (0, 0))[1]


class Aggregator:
    """`python -m cloud serve` on one port for its whole life, so a restarted instance answers where the last did."""

    def __init__(self, broker, db_url: str, data_dir: Path) -> None:
        self.broker, self.db_url, self.data_dir, self.port = broker, db_url, data_dir, free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> Aggregator:
        self.proc = start_serve(self.broker, self.db_url, self.data_dir, self.port)
        return self

    def await_session(self) -> None:
        """Until the aggregator has subscribed once, the broker keeps nothing for it: knock until it answers."""
        fleet = Publisher(self.broker.port, client_id="fault-warm-up")
        seqs = iter(range(1, 10**6))
        try:
            wait_for(lambda: fleet.send_predictions(WARM_UP, [next(seqs)]) or self.metric("stored") >= 1, 60,
                     "the aggregator's session", interval_s=0.5)  # fmt: skip
        finally:
            fleet.close()

    def metric(self, name: str) -> int:
        return metric(self.port, name)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)

    def outcome(self, fault: str, sent: int, recovery_s: float | None, absorbed_before: int = 0) -> Row:
        """The row once the store has caught up (or a minute has passed), then a second more: a late
        redelivery would show up as an extra row. `absorbed_before`: what killed instances had counted."""
        settle(self.db_url, sent, 60)
        time.sleep(1)
        rows, distinct = store_counts(self.db_url)
        return Row(fault, sent, distinct, rows, absorbed_before + max(self.metric("duplicates"), 0), recovery_s)


def settle(db_url: str, target: int, timeout_s: float) -> bool:
    """Wait until the store holds `target` distinct predictions; False if it did not within the timeout."""
    deadline = time.monotonic() + timeout_s
    while stored(db_url) < target:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def recovery(db_url: str, target: int, since: float, timeout_s: float = 120) -> float | None:
    """Seconds from `since` (monotonic) until the store holds `target` distinct predictions (None: never)."""
    return round(time.monotonic() - since, 2) if settle(db_url, target, timeout_s) else None
