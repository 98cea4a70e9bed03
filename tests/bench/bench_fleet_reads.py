"""Benchmark: read costs against history. The store is filled directly through the writer's path
(prediction_store.insert in batches of 5,000: counters and minutes kept as in service) with a fleet of
cameras at a steady rate, the newest rows at "now"; at each size the API's read paths are timed
in-process (FastAPI's TestClient): `GET /api/devices`, `GET /metrics`, a device's window, the
dashboard's refresh (every call its 2 s poll makes) and the training triggers' reads over an hour.
Bigger sizes add older history below the same recent rows, topped up to "now" before timing.
Targets: each call's p95 <= 100 ms at the largest size, and within 1.5x of its value at the smallest
(the refresh, six calls in a row, and the triggers, a background thread's, are shown beside them).

    .venv/bin/python tests/bench/bench_fleet_reads.py [--sizes 1000000,10000000] [--postgres]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from cloud.aggregator.drift import largest_drift  # noqa: E402
from cloud.aggregator.metrics import Metrics  # noqa: E402
from cloud.api import models  # noqa: E402
from cloud.api.app import create_app  # noqa: E402
from cloud.registry.versions import Registry  # noqa: E402
from cloud.store import Database, connect  # noqa: E402
from cloud.store import predictions as prediction_store  # noqa: E402
from cloud.store import windows as window_store  # noqa: E402
from cloud.training.jobs import Jobs  # noqa: E402
from tests.support.registry import register  # noqa: E402

UNTARGETED = {"dashboard refresh (6 calls)", "triggers (1 h)"}
LABELS = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
BATCH = 5000
WINDOW_S = 300
TRIGGER_WINDOW_S = 3600
# One refresh of dashboard.html: the fleet, the chosen device's window, the labelling queue, models, jobs, fleet.
DASHBOARD = [
    f"/api/devices?window={WINDOW_S}",
    "/api/devices/{device}/window?window=" + str(WINDOW_S),
    "/api/samples?status=unlabelled&limit=24",
    "/api/models",
    "/api/jobs?limit=10",
    "/api/devices",
]


class Fleet:
    """`devices` cameras at `fps` predictions/s each; seq `top` of every device is captured at `end`."""

    def __init__(self, db: Database, devices: int, fps: float, top_seq: int) -> None:
        self.db, self.fps = db, fps
        self.ids = [f"cam-{d:04d}" for d in range(devices)]
        self.top, self.end = top_seq, time.time()
        self.inserted_s = 0.0

    def ts(self, seq: int) -> float:
        return self.end - (self.top - seq) / self.fps

    def fill(self, first: int, last: int) -> float:
        """Seqs first..last of every device, oldest first, in the writer's batches; returns rows/s."""
        start, pending, n = time.perf_counter(), [], 0
        for seq in range(first, last + 1):
            ts = self.ts(seq)
            for i, device_id in enumerate(self.ids):
                score = 0.35 + 0.6 * ((seq * 7 + i * 13) % 100) / 100
                label = LABELS[(seq + i) % 5 if seq % 3 else 0]
                top_k = f'[{{"label":"{label}","score":{score:.3f}}}]'
                latency = (8.0 + seq % 9, 20.0 + seq % 13)
                pending.append((device_id, seq, ts, None, "flowers", "1", label, score, *latency, top_k, ts))
                if len(pending) == BATCH:
                    n += self._write(pending)
                    pending = []
        n += self._write(pending)
        return n / (time.perf_counter() - start)

    def _write(self, rows: list) -> int:
        if not rows:
            return 0
        with self.db.transaction() as cur:
            return len(prediction_store.insert(cur, rows, time.time()))

    def catch_up(self) -> None:
        """Rows from the newest stored up to now, so the windows read a full, recent window."""
        now = time.time()
        new_top = self.top + int((now - self.end) * self.fps)
        if new_top > self.top:
            old_top = self.top
            self.end, self.top = self.end + (new_top - old_top) / self.fps, new_top
            self.fill(old_top + 1, new_top)


def timings(call, repeat: int) -> dict[str, float]:
    call()  # warm: statement caches, imports
    spent = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        spent.append((time.perf_counter() - start) * 1000)
    spent.sort()
    return {"p50_ms": round(statistics.median(spent), 1), "p95_ms": round(spent[math.ceil(0.95 * len(spent)) - 1], 1)}


def measure(db: Database, fleet: Fleet, data_dir: Path, repeat: int, stored: int) -> dict[str, dict[str, float]]:
    routers = [models.router(Jobs(db), Registry(db, data_dir), data_dir)]
    api = TestClient(create_app(db, Metrics(), data_dir, routers, window_s=WINDOW_S))
    device = fleet.ids[len(fleet.ids) // 2]

    def get(path: str) -> None:
        response = api.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])

    def dashboard() -> None:
        for path in DASHBOARD:
            get(path.format(device=device))

    def triggers() -> None:
        window_store.confidence(db, "flowers", time.time() - TRIGGER_WINDOW_S)
        largest_drift(db, "flowers", TRIGGER_WINDOW_S, 100)

    in_window = api.get("/api/devices").json()[0]["window_predictions"]
    expected = min(WINDOW_S * fleet.fps, stored / len(fleet.ids))
    assert in_window >= 0.9 * expected, f"only {in_window} predictions in the window"
    calls = {path: timings(lambda path=path: get(path.format(device=device)), repeat) for path in DASHBOARD}
    return {
        "/api/devices": calls["/api/devices"],
        "/metrics": timings(lambda: get("/metrics"), repeat),
        "window": calls[DASHBOARD[1]],
        "dashboard call (slowest)": max(calls.values(), key=lambda t: t["p95_ms"]),
        "dashboard refresh (6 calls)": timings(dashboard, repeat),
        "triggers (1 h)": timings(triggers, repeat // 3 or 1),
    }


def open_store(tmp: Path, postgres: bool):
    """The store's URL: a SQLite file in `tmp`, or a PostgreSQL server started there; and the server, if any."""
    if not postgres:
        return f"sqlite:///{tmp / 'fleet.db'}", None
    import os

    from tests.support.postgres import Postgres

    os.chmod(tmp, 0o755)
    server = Postgres(tmp).start()
    return server.url, server


def print_reads(results: list[dict]) -> None:
    """Each read's p95 at each size, its ratio largest / smallest and whether it meets the targets."""
    first, last = results[0]["reads"], results[-1]["reads"]
    print(f"{'read':<20} " + " ".join(f"{'p95 ms @' + format(r['size'], ','):>16}" for r in results) + "   ratio  ok")
    for name in first:
        ratio = last[name]["p95_ms"] / first[name]["p95_ms"]
        ok = (last[name]["p95_ms"] <= 100 or name in UNTARGETED) and ratio <= 1.5
        print(
            f"{name:<20} " + " ".join(f"{r['reads'][name]['p95_ms']:>16}" for r in results) + f"   {ratio:5.2f}  {ok}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000", help="stored predictions at each timing, ascending")
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--fps", type=float, default=10.0, help="predictions per second of each camera")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--postgres", action="store_true", help="a PostgreSQL server started here, not SQLite")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-fleet-reads-"))
    db_url, server = open_store(tmp, args.postgres)
    try:
        db = connect(db_url)
        register(db, "1", {label: 20 for label in LABELS})
        per_device = [size // args.devices for size in sizes]
        fleet = Fleet(db, args.devices, args.fps, per_device[-1])
        results, below = [], per_device[-1]
        for size, rows in zip(sizes, per_device, strict=True):
            rate = fleet.fill(per_device[-1] - rows + 1, below)  # older history under what is stored
            below = per_device[-1] - rows
            fleet.catch_up()
            stored = int(db.query("SELECT SUM(predictions) FROM devices")[0][0])
            result = {"size": size, "stored": stored, "fill_rows_per_s": round(rate),
                      "reads": measure(db, fleet, tmp / "data", args.repeat, stored)}  # fmt: skip
            results.append(result)
            print(json.dumps(result), flush=True)
        db.close()
    finally:
        if server is not None:
            server.stop()
    print_reads(results)
    print(f"store: {db_url}")


if __name__ == "__main__":
    main()
