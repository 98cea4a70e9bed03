"""Benchmark: draining a backlog. N QoS 1 predictions are queued in Mosquitto for a persistent
session, then the consumer starts; messages/s until the last one is in. Measured in the same
run: a bare paho subscriber doing no work; one aggregator process committing to SQLite
(acknowledging after each commit); two aggregator processes sharing the subscription
(`$share/bench/…`) and the database. Targets: >= 15,000 committed/s per process on two cores,
>= 0.5x bare, two instances >= 1.7x one.

    .venv/bin/python tests/bench/bench_drain.py [--messages 100000]
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from cloud.aggregator.garbage import tune_for_ingest  # noqa: E402
from cloud.aggregator.ingest import RECEIVE_MAXIMUM, Ingest  # noqa: E402
from cloud.store import connect  # noqa: E402
from common import protocol  # noqa: E402
from common.mqtt import url  # noqa: E402
from common.mqtt.client import connect_properties  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402
from tests.support.fleet import Publisher  # noqa: E402

GROUP = "bench"


def queue_backlog(broker: Mosquitto, n: int, per_message: int = 1) -> float:
    start = time.perf_counter()
    fleet = Publisher(broker.port, client_id="bench-fleet")
    fleet.send_predictions("cam-1", range(1, n + 1), per_message=per_message)
    fleet.close()
    return n / (time.perf_counter() - start)


def forget(broker: Mosquitto, client_id: str) -> None:
    """End a persistent session, so later phases do not pay for queueing its copies."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", broker.port, clean_start=True)
    c.loop(1)
    c.disconnect()


def bare_drain(broker: Mosquitto, n: int) -> float:
    received = threading.Event()
    count = [0]

    def on_message(client, userdata, message) -> None:
        count[0] += 1
        if count[0] == n:
            received.set()

    def client() -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=mqtt.MQTTv5)
        c.on_message = on_message
        props = connect_properties(3600)
        props.ReceiveMaximum = RECEIVE_MAXIMUM  # the aggregator's window, for a like-for-like drain
        c.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
        return c

    c = client()
    c.subscribe("edgeloop/devices/+/predictions", qos=1)
    c.loop(1)
    c.disconnect()
    queue_backlog(broker, n)
    c = client()
    c.loop_start()
    start = time.perf_counter()
    received.wait(600)
    elapsed = time.perf_counter() - start
    c.disconnect()
    c.loop_stop()
    forget(broker, "bench-bare")
    return n / elapsed


def _instance(broker_url: str, db_url: str, data_dir: str, client_id: str, ready, go, stop, running=None) -> None:
    """One aggregator process: subscribe once (the session then holds the backlog), then drain; `running`,
    if given, is set once it is connected again."""
    logging.basicConfig(level=logging.WARNING)
    tune_for_ingest()  # as `cloud serve` does
    address = url.parse(broker_url)
    db = connect(db_url)
    ingest = Ingest(db, Path(data_dir), address, protocol.Topics(), client_id=client_id, group=GROUP)
    ingest.start()
    time.sleep(1)
    ingest.stop()
    ready.set()
    go.wait()
    ingest = Ingest(db, Path(data_dir), address, protocol.Topics(), client_id=client_id, group=GROUP)
    ingest.start()
    while running is not None and not ingest.connected:
        time.sleep(0.01)
    if running is not None:
        running.set()
    stop.wait()
    ingest.stop()


def aggregator_drain(broker: Mosquitto, n: int, tmp: Path, instances: int, per_message: int = 1) -> float:
    """Committed predictions/s of `instances` aggregator processes sharing one subscription, the
    predictions queued `per_message` to a message."""
    db_url = f"sqlite:///{tmp / f'bench-{instances}-{per_message}.db'}"
    db = connect(db_url)  # migrated once, before the instances race for it
    ctx = multiprocessing.get_context("spawn")
    go, stop = ctx.Event(), ctx.Event()
    readies = [ctx.Event() for _ in range(instances)]
    client_ids = [f"bench-{instances}-{i}" for i in range(instances)]
    procs = [
        ctx.Process(target=_instance, args=(broker.url, db_url, str(tmp / "data"), client_id, ready, go, stop))
        for client_id, ready in zip(client_ids, readies, strict=True)
    ]
    for proc in procs:
        proc.start()
    for ready in readies:
        ready.wait(60)
    queue_backlog(broker, n, per_message)
    start = time.perf_counter()
    go.set()
    while db.query("SELECT COUNT(*) FROM predictions")[0][0] < n:
        time.sleep(0.05)  # counting 100,000 rows takes about 0.6 ms of the cores being measured
    elapsed = time.perf_counter() - start
    stop.set()
    for proc in procs:
        proc.join(60)
    for client_id in client_ids:
        forget(broker, client_id)
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        broker = Mosquitto(tmp / "broker").start()
        try:
            bare = bare_drain(broker, args.messages)
            one = aggregator_drain(broker, args.messages, tmp, 1)
            two = aggregator_drain(broker, args.messages, tmp, 2)
        finally:
            broker.stop()
    print(f"{args.messages} queued predictions on {os.cpu_count()} cores: one aggregator committed {one:.0f}/s, "
          f"bare paho {bare:.0f}/s ({one / bare:.2f}x); "
          f"two sharing a subscription {two:.0f}/s ({two / one:.2f}x one)")  # fmt: skip
    print(json.dumps({"messages": args.messages, "committed_per_s": round(one), "bare_per_s": round(bare),
                      "ratio": round(one / bare, 3), "two_instances_per_s": round(two),
                      "scaling": round(two / one, 3)}))  # fmt: skip


if __name__ == "__main__":
    main()
