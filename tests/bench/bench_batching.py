"""Benchmark: predictions batched on the wire (schema 2), against one message per prediction, in one
run on one broker. Measured: a bare paho subscriber draining N single-prediction messages and doing
no work (messages/s); one aggregator process draining N predictions queued in batches of
--per-message (committed predictions/s; target >= 5x the bare rate); a device's backlog of N
predictions in its outbox, sent by the device's own publisher to an aggregator process, one message
per prediction and then in batches (seconds until the broker acknowledged all, and until all were
committed; target >= 10x faster).

    .venv/bin/python tests/bench/bench_batching.py [--predictions 100000] [--per-message 100]
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from cloud.store import connect  # noqa: E402
from common import protocol  # noqa: E402
from common.mqtt import url  # noqa: E402
from edge.batching import Packer  # noqa: E402
from edge.outbox import Outbox  # noqa: E402
from edge.publisher import Publisher  # noqa: E402
from tests.bench.bench_drain import _instance, aggregator_drain, bare_drain, forget  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402
from tests.support.fleet import predicted  # noqa: E402

DEVICE = "bench-cam"


def _backlog(path: Path, n: int) -> Outbox:
    """A device's outbox holding n predictions, as an outage leaves it."""
    outbox = Outbox(path, max_messages=n)
    topic = protocol.Topics().predictions(DEVICE)
    for start in range(1, n + 1, 10_000):
        seqs = range(start, min(start + 10_000, n + 1))
        outbox.append([(topic, predicted(DEVICE, seq).batched(), 1, seq) for seq in seqs], {"seq": seqs[-1]})
    return outbox


def device_drain(broker: Mosquitto, n: int, tmp: Path, per_message: int) -> tuple[float, float]:
    """Seconds until a device's backlog of n predictions has left its outbox (the broker acknowledged
    every message), and until one aggregator process, already running as when a device comes back after an
    outage, has committed them all."""
    db_url = f"sqlite:///{tmp / f'device-{per_message}.db'}"
    db = connect(db_url)
    ctx = multiprocessing.get_context("spawn")
    ready, go, stop, running = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Event()
    client_id = f"bench-device-{per_message}"
    args = (broker.url, db_url, str(tmp / "data"), client_id, ready, go, stop, running)
    proc = ctx.Process(target=_instance, args=args)
    proc.start()
    ready.wait(60)
    go.set()
    running.wait(60)
    outbox = _backlog(tmp / f"outbox-{per_message}.sqlite", n)
    publisher = Publisher(
        url.parse(broker.url), DEVICE, protocol.Topics(), outbox, lambda state: protocol.Status(state=state, ts=0),
        packer=Packer(DEVICE, per_message, max_delay_s=0.2),
    )  # fmt: skip
    start = time.perf_counter()
    publisher.start()
    while len(outbox):
        time.sleep(0.02)
    sent = time.perf_counter() - start
    while db.query("SELECT COUNT(*) FROM predictions")[0][0] < n:
        time.sleep(0.05)
    committed = time.perf_counter() - start
    publisher.stop(flush_s=0)
    stop.set()
    proc.join(60)
    forget(broker, client_id)
    return sent, committed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--predictions", type=int, default=100_000)
    parser.add_argument("--per-message", type=int, default=100, help="predictions per batch (the device's default)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    n, per = args.predictions, args.per_message
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        broker = Mosquitto(tmp / "broker").start()
        try:
            bare = bare_drain(broker, n)
            batched = aggregator_drain(broker, n, tmp, 1, per_message=per)
            single_sent, single_committed = device_drain(broker, n, tmp, 1)
            batch_sent, batch_committed = device_drain(broker, n, tmp, per)
        finally:
            broker.stop()
    print(f"{n} predictions on {os.cpu_count()} cores, {per} per batch: one aggregator committed {batched:.0f}/s "
          f"batched, bare paho {bare:.0f} messages/s ({batched / bare:.2f}x); a device's backlog left its outbox "
          f"in {batch_sent:.1f}s batched vs {single_sent:.1f}s ({single_sent / batch_sent:.1f}x) and was "
          f"committed in {batch_committed:.1f}s vs {single_committed:.1f}s "
          f"({single_committed / batch_committed:.1f}x)")  # fmt: skip
    print(json.dumps({"predictions": n, "per_message": per, "committed_per_s": round(batched),
                      "bare_per_s": round(bare), "ratio": round(batched / bare, 2),
                      "device_sent_s": [round(single_sent, 2), round(batch_sent, 2)],
                      "device_sent_ratio": round(single_sent / batch_sent, 1),
                      "device_committed_s": [round(single_committed, 2), round(batch_committed, 2)],
                      "device_committed_ratio": round(single_committed / batch_committed, 1)}))  # fmt: skip


if __name__ == "__main__":
    main()
