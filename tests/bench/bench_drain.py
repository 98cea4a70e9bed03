"""Benchmark: draining a backlog. N QoS 1 predictions are queued in Mosquitto for a persistent
session, then the consumer starts; messages/s until the last one is in. Two consumers, in the
same run: the aggregator committing to SQLite (acknowledging after each commit), and a bare paho
subscriber doing no work. Target: >= 15,000 committed/s per process on two cores, >= 0.5x bare.

    .venv/bin/python tests/bench/bench_drain.py [--messages 100000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from cloud.aggregator.ingest import Ingest  # noqa: E402
from cloud.store import connect  # noqa: E402
from edge import protocol  # noqa: E402
from edge.mqtt import url  # noqa: E402
from edge.mqtt.client import connect_properties  # noqa: E402
from tests.broker import Mosquitto  # noqa: E402
from tests.fleet import Publisher  # noqa: E402


def queue_backlog(broker: Mosquitto, n: int) -> float:
    start = time.perf_counter()
    fleet = Publisher(broker.port, client_id="bench-fleet")
    fleet.send_predictions("cam-1", range(1, n + 1))
    fleet.close()
    return n / (time.perf_counter() - start)


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
        props.ReceiveMaximum = 5000
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
    return n / elapsed


def aggregator_drain(broker: Mosquitto, n: int, tmp: Path) -> float:
    db = connect(f"sqlite:///{tmp / 'bench.db'}")
    address = url.parse(broker.url)
    ingest = Ingest(db, tmp / "data", address, protocol.Topics(), client_id="bench-aggregator")
    ingest.start()
    time.sleep(1)
    ingest.stop()
    queue_backlog(broker, n)
    ingest = Ingest(db, tmp / "data", address, protocol.Topics(), client_id="bench-aggregator")
    start = time.perf_counter()
    ingest.start()
    while ingest.metrics.counts["stored"] < n:
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    ingest.stop()
    assert db.query("SELECT COUNT(*) FROM predictions")[0][0] == n
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
            committed = aggregator_drain(broker, args.messages, tmp)
        finally:
            broker.stop()
    print(f"{args.messages} queued predictions: aggregator committed {committed:.0f}/s, bare paho {bare:.0f}/s "
          f"({committed / bare:.2f}x)")  # fmt: skip
    print(json.dumps({"messages": args.messages, "committed_per_s": round(committed), "bare_per_s": round(bare),
                      "ratio": round(committed / bare, 3)}))  # fmt: skip


if __name__ == "__main__":
    main()
