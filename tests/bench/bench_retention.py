"""Benchmark: expiring raw predictions while ingest runs. The store is filled through the writer's path
(prediction_store.insert in batches of 5,000, counters and rollups kept) with `--rows` predictions
captured 8.5 to 9.5 days ago from `--devices` cameras; then a writer thread commits a batch of `--live`
recent predictions every 20 ms (the ingest's rhythm under load) while the retention (7 days) deletes
the old ones: in batches of `--batch` rows on SQLite, a day partition at a time on PostgreSQL. Reported:
how long the pass took, rows per second, and the writer's commit times before and during the pass
(p50, p99, max: the longest stall ingest saw). Every live row must be stored, every old one gone.

    .venv/bin/python tests/bench/bench_retention.py [--rows 1000000] [--devices 100] [--batch 1000] [--postgres]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from cloud.aggregator.metrics import Metrics  # noqa: E402
from cloud.aggregator.retention import DAY_S, PREDICTION_BATCH, PredictionRetention, Retention  # noqa: E402
from cloud.store import Database, connect  # noqa: E402
from cloud.store import predictions as prediction_store  # noqa: E402

BATCH = 5000
LIVE_EVERY_S = 0.02


def row(device_id: str, seq: int, ts: float) -> tuple:
    return (device_id, seq, ts, None, "flowers", "1", "daisy", 0.9, 8.0, 20.0, '[{"label":"daisy","score":0.9}]', ts)


def fill(db: Database, rows: int, devices: int, now: float) -> float:
    """`rows` predictions spread over the day that ended 8.5 days ago; returns rows/s."""
    start, pending = time.perf_counter(), []
    per_device = rows // devices
    for seq in range(per_device):
        ts = now - 9.5 * DAY_S + seq * DAY_S / per_device
        pending += [row(f"cam-{d:04d}", seq, ts) for d in range(devices)]
        if len(pending) >= BATCH:
            write(db, pending)
            pending = []
    write(db, pending)
    return per_device * devices / (time.perf_counter() - start)


def write(db: Database, rows: list) -> None:
    if rows:
        with db.transaction() as cur:
            prediction_store.insert(cur, rows, time.time())


def summary(spent: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in spent)
    p99 = ms[int(0.99 * (len(ms) - 1))]
    return {"commits": len(ms), "p50_ms": round(statistics.median(ms), 1), "p99_ms": round(p99, 1),
            "max_ms": round(ms[-1], 1)}  # fmt: skip


class LiveWriter(threading.Thread):
    """Commits `live` recent predictions of one more device every LIVE_EVERY_S, timing each commit."""

    def __init__(self, db: Database, live: int) -> None:
        super().__init__(name="live-writer")
        self.db, self.live = db, live
        self.seq, self.spent = 0, list[float]()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            rows = [row("cam-live", self.seq + i, time.time()) for i in range(self.live)]
            started = time.perf_counter()
            write(self.db, rows)
            self.spent.append(time.perf_counter() - started)
            self.seq += self.live
            self.stop.wait(LIVE_EVERY_S)

    def phase(self, seconds: float | None, until: threading.Event | None = None) -> list[float]:
        """The commit times of the next `seconds`, or until `until` is set."""
        first = len(self.spent)
        if until is None:
            time.sleep(seconds or 0)
        else:
            until.wait()
        return self.spent[first:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="old predictions to expire")
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--batch", type=int, default=PREDICTION_BATCH, help="raw rows per delete (SQLite)")
    parser.add_argument("--live", type=int, default=100, help="predictions per live commit")
    parser.add_argument("--postgres", action="store_true", help="a PostgreSQL server started here, not SQLite")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-retention-"))
    server = None
    if args.postgres:
        import os

        from tests.support.postgres import Postgres

        os.chmod(tmp, 0o755)
        server = Postgres(tmp).start()
        db_url = server.url
    else:
        db_url = f"sqlite:///{tmp / 'retention.db'}"
    try:
        db = connect(db_url)
        now = time.time()
        retention = Retention(db, tmp, None, Metrics(), predictions=PredictionRetention(7, 400),
                              prediction_batch=args.batch)  # fmt: skip
        retention.expire_predictions(now - 3 * DAY_S)  # PostgreSQL: partitions from the old rows' days
        rate = fill(db, args.rows, args.devices, now)
        live = LiveWriter(db, args.live)
        live.start()
        baseline = live.phase(5)
        done = threading.Event()
        started = time.perf_counter()

        def expire() -> None:
            retention.expire_predictions(now)
            done.set()

        sweep = threading.Thread(target=expire)
        sweep.start()
        during = live.phase(None, done)
        took = time.perf_counter() - started
        live.stop.set()
        live.join()
        sweep.join()
        left = db.query("SELECT COUNT(*) FROM predictions WHERE device_id <> 'cam-live'")[0][0]
        stored = db.query("SELECT COUNT(*) FROM predictions WHERE device_id = 'cam-live'")[0][0]
        assert left == 0, f"{left} old rows left"
        assert stored == live.seq, f"{stored} of {live.seq} live rows stored"
        result = {
            "store": "postgresql" if server else "sqlite",
            "rows": args.rows,
            "batch": args.batch,
            "fill_rows_per_s": round(rate),
            "expire_s": round(took, 2),
            "expired_rows_per_s": round(args.rows / took),
            "live_commits_before": summary(baseline),
            "live_commits_during": summary(during),
        }
        print(json.dumps(result), flush=True)
        db.close()
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
