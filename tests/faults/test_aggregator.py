"""The aggregator killed with SIGKILL again and again, at random points, while a fleet publishes, and
restarted each time: acknowledged only after its batch is committed, it loses nothing, and the
redeliveries of what it had stored but not acknowledged are absorbed, never stored twice."""

import random
import threading
import time

import pytest

from tests.support.faults import PER_MESSAGE, RATE, Aggregator, paced, recovery, stored
from tests.support.fleet import Publisher

DEVICES = 3


@pytest.mark.parametrize(
    "kills", [pytest.param(3, id="3-kills"), pytest.param(12, id="12-kills", marks=pytest.mark.soak)]
)
def test_aggregator_sigkilled_repeatedly_while_a_fleet_publishes(kills, broker, tmp_path, fault_report) -> None:
    rng = random.Random()
    per_device = RATE * (4 + 4 * kills)  # a stream that outlasts the kills and restarts
    db = f"sqlite:///{tmp_path / 'edgeloop.db'}"
    aggregator = Aggregator(broker, db, tmp_path / "data").start()
    progress = {f"cam-{d}": 0 for d in range(DEVICES)}
    fleets = [Publisher(broker.port, client_id=f"fleet-{device}") for device in progress]
    senders = [
        threading.Thread(
            target=fleet.send_predictions,
            args=(device, paced(range(1, per_device + 1), progress, device), None, PER_MESSAGE),
        )
        for fleet, device in zip(fleets, progress, strict=True)
    ]
    recoveries, absorbed = [], 0
    try:
        aggregator.await_session()
        for sender in senders:
            sender.start()
        for _ in range(kills):
            time.sleep(rng.uniform(0.5, 2.5))  # a random point in the stream
            absorbed += max(aggregator.metric("duplicates"), 0)
            aggregator.kill()
            aggregator.start()
            restarted, sent_before = time.monotonic(), sum(progress.values())
            recoveries.append(recovery(db, sent_before, restarted))
            assert recoveries[-1] is not None, f"{sent_before} sent before the restart, {stored(db)} stored"
        assert sent_before < DEVICES * per_device, "the last kill landed while the fleet published"
        for sender in senders:
            sender.join(60 + per_device / RATE)
        row = aggregator.outcome(f"aggregator SIGKILLed {kills} times, {DEVICES} devices", DEVICES * per_device,
                                 max(recoveries), absorbed)  # fmt: skip
    finally:
        for fleet in fleets:
            fleet.close()
        aggregator.stop()
    fault_report.append(row)
    assert sum(progress.values()) == row.sent
    assert (row.lost, row.duplicated) == (0, 0)
