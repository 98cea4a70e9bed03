"""PostgreSQL stopped and started again under the aggregator while a fleet publishes: the service
waits for its database, holding the batch unacknowledged, and never exits; every prediction is
stored exactly once."""

import threading
import time

import psycopg
import pytest

from tests.support.faults import PER_MESSAGE, Aggregator, paced, recovery
from tests.support.fleet import Publisher

DEVICES = 2


@pytest.mark.parametrize(
    "down_s", [pytest.param(4, id="restart"), pytest.param(30, id="down-30s", marks=pytest.mark.soak)]
)
def test_postgres_restarted_while_the_aggregator_ingests(down_s, postgres, broker, tmp_path, fault_report) -> None:
    name = f"faults_{down_s}"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    db = postgres.url.rsplit("/", 1)[0] + f"/{name}"
    per_device = 300 * (down_s + 10)
    aggregator = Aggregator(broker, db, tmp_path / "data").start()
    progress = {f"cam-{d}": 0 for d in range(DEVICES)}
    fleet = Publisher(broker.port, client_id="fleet")
    senders = [
        threading.Thread(
            target=fleet.send_predictions,
            args=(device, paced(range(1, per_device + 1), progress, device), None, PER_MESSAGE),
        )
        for device in progress
    ]
    try:
        aggregator.await_session()
        for sender in senders:
            sender.start()
        time.sleep(2)
        postgres.stop()
        try:
            time.sleep(down_s)
            assert aggregator.proc.poll() is None, "the aggregator exited while its database was away"
        finally:
            postgres.resume()
        back, sent_before = time.monotonic(), sum(progress.values())
        recovery_s = recovery(db, sent_before, back)
        for sender in senders:
            sender.join(60 + per_device / 300)
        row = aggregator.outcome(f"PostgreSQL down {down_s} s, {DEVICES} devices", DEVICES * per_device, recovery_s)
        assert aggregator.proc.poll() is None, "the aggregator exited"
    finally:
        fleet.close()
        aggregator.stop()
    fault_report.append(row)
    assert sent_before < row.sent, "the database came back while the fleet published"
    assert (row.lost, row.duplicated) == (0, 0)
    assert recovery_s is not None
