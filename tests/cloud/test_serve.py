"""`python -m cloud serve` as a process: killed with SIGKILL in the middle of a stream and
restarted, it has stored every prediction exactly once."""

import signal
import threading
import time
from pathlib import Path

from tests.support.fleet import Publisher
from tests.support.ports import free_port
from tests.support.serve import metric, start_serve
from tests.support.waiting import wait_for

N = 20_000


def count(db_file: Path) -> int:
    import sqlite3

    with sqlite3.connect(db_file) as conn:
        return conn.execute("SELECT COUNT(*) FROM predictions WHERE device_id = 'cam-1'").fetchone()[0]


def test_sigkill_mid_stream_then_restart_stores_every_prediction_once(broker, tmp_path) -> None:
    import sqlite3

    db_file = tmp_path / "edgeloop.db"
    db, port = f"sqlite:///{db_file}", free_port()
    serve = start_serve(broker, db, tmp_path / "data", port)
    try:
        fleet = Publisher(broker.port)
        warm_ups = iter(range(1, 10**6))
        # Until the aggregator has subscribed, nothing is kept for it: knock until it answers.
        wait_for(lambda: fleet.send_predictions("warm-up", [next(warm_ups)]) or metric(port, "stored") >= 1, 60,
                 "the aggregator's session", interval_s=0.5)  # fmt: skip
        sender = threading.Thread(target=fleet.send_predictions, args=("cam-1", range(1, N + 1)))
        sender.start()
        wait_for(lambda: count(db_file) >= 3000, 60, "part of the stream stored")
        serve.send_signal(signal.SIGKILL)
        serve.wait(10)
        killed_at = count(db_file)
        sender.join(120)
        fleet.close()
        serve = start_serve(broker, db, tmp_path / "data", port)
        wait_for(lambda: count(db_file) >= N, 120, "every prediction after the restart")
        time.sleep(1)  # anything redelivered late would show up as an extra row (it must not)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(30)
    rows = sqlite3.connect(db_file).execute(
        "SELECT COUNT(*), COUNT(DISTINCT seq), MIN(seq), MAX(seq) FROM predictions WHERE device_id = 'cam-1'"
    )
    assert rows.fetchone() == (N, N, 1, N)
    assert 3000 <= killed_at < N, "the kill landed mid-stream"
