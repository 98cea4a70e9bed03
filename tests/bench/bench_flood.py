"""Benchmark: one device's sample flood against another device's predictions. A real Mosquitto and
`python -m cloud serve` with its default flags; cam-b's 20 predictions are timed from publish to
store alone, then again just after a flood: N JPEG headers claiming 8192x8192 from one device and N
real 3.4 MB pictures from N devices. Prints the two latencies, their ratio, the service's RSS and
what it refused, by reason. Target: the ratio near 1, RSS growth bounded by --sample-in-flight-mib.

    .venv/bin/python tests/bench/bench_flood.py [--flood 20]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402

from common import protocol  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402
from tests.support.fleet import Publisher  # noqa: E402
from tests.support.fuzz import jpeg_claiming  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.processes import terminate  # noqa: E402
from tests.support.samples import sample_properties  # noqa: E402
from tests.support.serve import metric, start_serve  # noqa: E402
from tests.support.waiting import wait_for  # noqa: E402


def offer(fleet: Publisher, device_id: str, jpeg: bytes) -> None:
    meta = protocol.SampleMeta(
        device_id=device_id, seq=1, ts=time.time(), model=protocol.ModelRef(name="flowers", version="1"),
        top_k=[protocol.Score(label="daisy", score=0.3)], reason="low_confidence",
    )  # fmt: skip
    fleet.send(protocol.Topics().samples(device_id), jpeg, properties=sample_properties(meta))


def stored(db_file: Path) -> int:
    with sqlite3.connect(db_file) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM predictions WHERE device_id = 'cam-b'").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def latency(fleet: Publisher, db_file: Path, seqs: range) -> float:
    start, before = time.monotonic(), stored(db_file)
    fleet.send_predictions("cam-b", seqs)
    wait_for(lambda: stored(db_file) >= before + len(seqs), 300, "cam-b's predictions", interval_s=0.01)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flood", type=int, default=20, help="crafted headers, and real pictures, in the flood")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    crafted = jpeg_claiming(cv2.imencode(".jpg", rng.integers(0, 256, (48, 48, 3), np.uint8))[1].tobytes(), 8192, 8192)
    picture = cv2.imencode(".jpg", rng.integers(0, 256, (1300, 1300, 3), np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 100])
    real = picture[1].tobytes()
    with tempfile.TemporaryDirectory() as tmp:
        root, port = Path(tmp), free_port()
        broker = Mosquitto(root / "broker").start()
        serve = start_serve(broker, f"sqlite:///{root / 'db.sqlite'}", root / "data", port, "--no-train")
        fleet, cam_b = Publisher(broker.port), Publisher(broker.port, "cam-b")  # a device, a connection
        try:
            seqs = iter(range(1, 10**6))
            wait_for(lambda: cam_b.send_predictions("cam-b", [next(seqs)]) or stored(root / "db.sqlite") >= 1, 60,
                     "the aggregator's session", interval_s=0.3)  # fmt: skip
            service = psutil.Process(serve.pid)
            rss = service.memory_info().rss / 2**20
            first = next(seqs)
            alone = latency(cam_b, root / "db.sqlite", range(first, first + 20))
            for n in range(args.flood):
                offer(fleet, "flooder", crafted)
                offer(fleet, f"big-{n}", real[:2] + b"\xff\xfe\x00\x04" + n.to_bytes(2, "big") + real[2:])
            during = latency(cam_b, root / "db.sqlite", range(first + 20, first + 40))
            done = lambda: metric(port, "samples_stored") + metric(port, "rejected")  # noqa: E731
            wait_for(lambda: done() >= 2 * args.flood, 600, "the flood stored or rejected")
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            peak = next(
                line.split()[1]
                for line in Path(f"/proc/{serve.pid}/status").read_text().splitlines()
                if line.startswith("VmHWM")
            )
            print(json.dumps({
                "flood": args.flood, "alone_s": round(alone, 3), "during_flood_s": round(during, 3),
                "ratio": round(during / alone, 1), "samples_stored": metric(port, "samples_stored"),
                "rejected": {
                    line.split('"')[1]: int(float(line.split()[-1]))
                    for line in text.splitlines() if line.startswith("edgeloop_rejected_total{")
                },
                "rss_mib": {"before": round(rss), "after": round(service.memory_info().rss / 2**20),
                            "peak": int(peak) // 1024},
            }))  # fmt: skip
        finally:
            fleet.close()
            cam_b.close()
            terminate(serve)
            broker.stop()


if __name__ == "__main__":
    main()
