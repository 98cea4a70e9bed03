"""Benchmark: the fleet's store filled through the real ingest. bench_fleet_reads' fleet (cameras at a
steady rate, the newest rows at "now", older history added below at each larger size) sends its
predictions as devices do, schema 2 batches of --per-message per device, to a real Mosquitto; they are
queued for the aggregator's persistent session while it is away, then drained by a fresh aggregator
process (the service's Ingest, acknowledging after each commit), --chunk predictions at a time, each
drain timed from its start to its last commit. At each size the API's reads are timed as in
bench_fleet_reads. Measured in the same run: a bare paho subscriber draining single-prediction
messages and doing no work (bench_drain).

Targets: each read's p95 <= 100 ms at the largest size and within 1.5x of the smallest; the ingest rate
at the largest size (its last drain) >= 0.8x the rate on an empty store (the first drain); committed
predictions/s on an empty store >= 5x the bare paho message rate.

    .venv/bin/python tests/bench/bench_fleet_scale.py [--sizes 1000000,10000000] [--postgres]
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
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from cloud.store import Database, connect  # noqa: E402
from common import protocol  # noqa: E402
from tests.bench.bench_drain import _instance, bare_drain, forget  # noqa: E402
from tests.bench.bench_fleet_reads import LABELS, Fleet, measure, open_store, print_reads  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402
from tests.support.fleet import Publisher  # noqa: E402
from tests.support.registry import register  # noqa: E402

CLIENT_ID = "bench-scale"
DRAIN_TIMEOUT_S = 1800


class WireFleet(Fleet):
    """The fleet's rows leave as batched messages, and each fill is drained by the real ingest."""

    def __init__(self, db: Database, devices: int, fps: float, top_seq: int, broker: Mosquitto, db_url: str,
                 data_dir: Path, per_message: int, chunk: int) -> None:  # fmt: skip
        super().__init__(db, devices, fps, top_seq)
        self.broker, self.db_url, self.data_dir = broker, db_url, data_dir
        self.per_message, self.chunk_seqs = per_message, max(1, chunk // devices)
        self.publisher = Publisher(broker.port, client_id="bench-scale-fleet")
        self.topics = protocol.Topics()
        self.pending: dict[str, list[bytes]] = defaultdict(list)
        self.drains: list[dict[str, float]] = []  # each drain: predictions stored after it, committed/s

    def stored(self) -> int:
        return int(self.db.query("SELECT COALESCE(SUM(predictions), 0) FROM devices")[0][0])

    def fill(self, first: int, last: int) -> float:
        """Seqs first..last of every device, in drains of about --chunk predictions; returns the last one's rate."""
        rate = 0.0
        for start in range(first, last + 1, self.chunk_seqs):
            rate = self._drain(start, min(start + self.chunk_seqs - 1, last))
        return rate

    def _drain(self, first: int, last: int) -> float:
        ctx = multiprocessing.get_context("spawn")
        ready, go, stop = ctx.Event(), ctx.Event(), ctx.Event()
        args = (self.broker.url, self.db_url, str(self.data_dir), CLIENT_ID, ready, go, stop)
        proc = ctx.Process(target=_instance, args=args)
        proc.start()
        try:
            if not ready.wait(120):
                raise RuntimeError("the aggregator did not subscribe")
            n = (last - first + 1) * len(self.ids)
            expected = self.stored() + n
            super().fill(first, last)  # queued in the broker: _write publishes
            self.publisher.send_all(self._messages(everything=True))
            start = time.perf_counter()
            go.set()
            while (stored := self.stored()) < expected:
                if time.perf_counter() - start > DRAIN_TIMEOUT_S or not proc.is_alive():
                    raise RuntimeError(f"the aggregator stored {stored} of {expected}")
                time.sleep(0.05)
            rate = n / (time.perf_counter() - start)
        finally:
            stop.set()
            proc.join(60)
        self.drains.append({"stored": expected, "committed_per_s": round(rate)})
        print(json.dumps({"drain": self.drains[-1]}), flush=True)
        return rate

    def _write(self, rows: list) -> int:
        for device_id, seq, ts, _, name, version, label, score, infer, total, _, _ in rows:
            self.pending[device_id].append(
                protocol.Prediction(
                    device_id=device_id, seq=seq, ts=ts, model=protocol.ModelRef(name=name, version=version),
                    top_k=[protocol.Score(label=label, score=score)],
                    latency_ms=protocol.Latency(infer=infer, total=total),
                ).batched()
            )  # fmt: skip
        self.publisher.send_all(self._messages(everything=False))
        return len(rows)

    def _messages(self, everything: bool) -> Iterator[tuple[str, bytes]]:
        """Each device's full batches (everything: its last, partial one too)."""
        for device_id, items in self.pending.items():
            while len(items) >= self.per_message or (everything and items):
                yield self.topics.predictions(device_id), protocol.batch_payload(device_id, items[: self.per_message])
                del items[: self.per_message]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000", help="stored predictions at each timing, ascending")
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--fps", type=float, default=10.0, help="predictions per second of each camera")
    parser.add_argument("--per-message", type=int, default=100, help="predictions per batch (the device's default)")
    parser.add_argument("--chunk", type=int, default=500_000, help="predictions queued, then drained and timed")
    parser.add_argument("--bare-messages", type=int, default=100_000, help="drained by the bare paho subscriber")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--postgres", action="store_true", help="a PostgreSQL server started here, not SQLite")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sizes = [int(s) for s in args.sizes.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-fleet-scale-"))
    broker = Mosquitto(tmp / "broker").start()
    db_url, server = open_store(tmp, args.postgres)
    try:
        bare = bare_drain(broker, args.bare_messages)  # before the aggregator's session exists to queue them too
        db = connect(db_url)
        register(db, "1", {label: 20 for label in LABELS})
        per_device = [size // args.devices for size in sizes]
        fleet = WireFleet(db, args.devices, args.fps, per_device[-1], broker, db_url, tmp / "data",
                          args.per_message, args.chunk)  # fmt: skip
        results, below = [], per_device[-1]
        for size, rows in zip(sizes, per_device, strict=True):
            rate = fleet.fill(per_device[-1] - rows + 1, below)  # older history under what is stored
            below = per_device[-1] - rows
            fleet.catch_up()
            stored = fleet.stored()
            result = {"size": size, "stored": stored, "ingest_per_s": round(rate),
                      "reads": measure(db, fleet, tmp / "data", args.repeat, stored)}  # fmt: skip
            results.append(result)
            print(json.dumps(result), flush=True)
        fleet.publisher.close()
        db.close()
        forget(broker, CLIENT_ID)
    finally:
        broker.stop()
        if server is not None:
            server.stop()
    print_reads(results)
    empty, largest = fleet.drains[0]["committed_per_s"], results[-1]["ingest_per_s"]
    print(f"ingest on {os.cpu_count()} cores, {args.per_message} per message: {empty}/s on an empty store, "
          f"{largest}/s at {sizes[-1]:,} ({largest / empty:.2f}x, target >= 0.8: {largest >= 0.8 * empty}); "
          f"bare paho {bare:.0f} messages/s: batched {empty / bare:.2f}x "
          f"(target >= 5: {empty >= 5 * bare})")  # fmt: skip
    print(json.dumps({"store": db_url.split(":")[0], "bare_per_s": round(bare), "empty_per_s": empty,
                      "largest_per_s": largest, "ingest_ratio": round(largest / empty, 2),
                      "batched_vs_bare": round(empty / bare, 2), "drains": fleet.drains}))  # fmt: skip


if __name__ == "__main__":
    main()
