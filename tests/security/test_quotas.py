"""One device cannot hurt the fleet: against a real Mosquitto and a real `python -m cloud serve`, a flood
of JPEG headers claiming 8192x8192 is refused before decoding without holding up another device's
predictions, a device over its rate or disk quota is dropped and counted while the others' samples
land, and memory stays bounded under large samples; retention deletes the samples nobody labelled,
pictures too, and keeps the labelled ones; the quotas' bookkeeping on its own."""

from __future__ import annotations

import logging
import sqlite3
import time
import urllib.request
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import psutil
import pytest

from cloud import labelling
from cloud.aggregator.metrics import Metrics
from cloud.aggregator.quotas import Admission, RefusalLog, SampleLimits
from cloud.aggregator.retention import DAY_S, Retention
from cloud.aggregator.writer import sample_path
from cloud.options import ServeConfig
from cloud.service import sample_limits
from cloud.store import connect
from common import protocol
from common.options import build
from tests.support.broker import Mosquitto
from tests.support.fleet import Publisher
from tests.support.fuzz import jpeg_claiming
from tests.support.ports import free_port
from tests.support.processes import terminate
from tests.support.samples import sample_properties, store_samples
from tests.support.serve import start_serve
from tests.support.waiting import wait_for

RATE, QUOTA_MIB, IN_FLIGHT_MIB = 30, 4, 16
TOPICS = protocol.Topics()


class Service:
    def __init__(self, root: Path) -> None:
        self.broker = Mosquitto(root / "broker").start()
        self.port, self.db_file = free_port(), root / "db.sqlite"
        limits = [
            "--sample-rate-per-min",
            RATE,
            "--sample-quota-mib",
            QUOTA_MIB,
            "--sample-in-flight-mib",
            IN_FLIGHT_MIB,
        ]
        self.process = start_serve(
            self.broker, f"sqlite:///{self.db_file}", root / "data", self.port, "--no-train", *limits
        )
        self.fleet, self.other = (
            Publisher(self.broker.port),
            Publisher(self.broker.port, "other"),
        )  # one connection each
        seqs = iter(range(1, 10**6))
        wait_for(lambda: self.predict("warm-up", [next(seqs)]) or self.stored("warm-up") >= 1, 60,
                 "the aggregator's session", interval_s=0.3)  # fmt: skip

    def predict(self, device_id: str, seqs) -> None:
        """Predictions from a device of its own connection, as a device has."""
        self.other.send_predictions(device_id, seqs)

    def offer(self, device_id: str, jpegs: list[bytes]) -> None:
        for seq, jpeg in enumerate(jpegs, start=1):
            meta = protocol.SampleMeta(
                device_id=device_id, seq=seq, ts=time.time(), model=protocol.ModelRef(name="flowers", version="1"),
                top_k=[protocol.Score(label="daisy", score=0.3)], reason="low_confidence",
            )  # fmt: skip
            self.fleet.send(TOPICS.samples(device_id), jpeg, properties=sample_properties(meta))

    def query(self, sql: str, params=()) -> list[tuple]:
        with sqlite3.connect(self.db_file) as db:
            return db.execute(sql, params).fetchall()

    def stored(self, device_id: str) -> int:
        try:
            return self.query("SELECT COUNT(*) FROM predictions WHERE device_id = ?", (device_id,))[0][0]
        except sqlite3.OperationalError:  # not created yet
            return 0

    def samples(self, device_id: str) -> tuple[int, int]:
        """(samples stored, their bytes) of one device."""
        count, size = self.query("SELECT COUNT(*), SUM(bytes) FROM samples WHERE device_id = ?", (device_id,))[0]
        return count, size or 0

    def counts(self) -> dict[str, int]:
        """The service's counters, rejections by reason under their reason."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5).read().decode()
        counts: Counter[str] = Counter()
        for line in text.splitlines():
            if line.startswith("edgeloop_") and "_total" in line:
                if line.startswith("edgeloop_rejected_total{"):
                    counts["rejected"] += int(float(line.split()[-1]))
                name = line.split('reason="')[1].split('"')[0] if "reason=" in line else line.split("_total")[0][9:]
                counts[name] = int(float(line.split()[-1]))
        return dict(counts)

    def settled(self, before: dict[str, int], messages: int) -> dict[str, int]:
        """Wait until the service is done with `messages` more than at `before` (stored, after the commit, or
        rejected); returns how each counter grew."""
        done = ("stored", "duplicates", "samples_stored", "rejected")
        grew: dict[str, int] = {}

        def finished() -> bool:
            nonlocal grew
            grew = {name: n - before.get(name, 0) for name, n in self.counts().items()}
            return sum(grew[name] for name in done) >= messages

        wait_for(finished, 60, f"{messages} messages stored or rejected")
        return grew

    def close(self) -> None:
        self.fleet.close()
        self.other.close()
        terminate(self.process)
        self.broker.stop()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory):
    running = Service(tmp_path_factory.mktemp("quotas"))
    yield running
    running.close()


def noise_jpegs(n: int, height: int, width: int, seed: int) -> list[bytes]:
    """Distinct JPEGs that compress badly: 2 bytes a pixel (quality 100)."""
    rng = np.random.default_rng(seed)
    params = [cv2.IMWRITE_JPEG_QUALITY, 100]
    return [
        cv2.imencode(".jpg", rng.integers(0, 256, (height, width, 3), np.uint8), params)[1].tobytes() for _ in range(n)
    ]


def latency(service: Service, device_id: str, seqs: range) -> float:
    """Seconds from sending these predictions to their being in the store."""
    start, before = time.monotonic(), service.stored(device_id)
    service.predict(device_id, seqs)
    wait_for(lambda: service.stored(device_id) >= before + len(seqs), 30, f"{device_id}'s predictions")
    return time.monotonic() - start


@pytest.mark.services
def test_huge_headers_are_refused_before_decoding_and_hold_up_no_one(service: Service) -> None:
    """Before: these 20 took 6-25 s to decode (1.5 s each here), the other device's predictions waiting behind."""
    alone = latency(service, "cam-b", range(1, 21))
    crafted = jpeg_claiming(noise_jpegs(1, 48, 48, seed=1)[0], 8192, 8192)
    before = service.counts()
    service.offer("flooder", [crafted] * 20)
    during = latency(service, "cam-b", range(21, 41))
    assert service.settled(before, 40)["image_too_large"] == 20
    assert service.samples("flooder") == (0, 0)
    assert during < alone + 1.0, f"cam-b's predictions took {during:.2f}s during the flood, {alone:.2f}s alone"


@pytest.mark.services
def test_a_device_over_its_rate_or_disk_quota_is_dropped_while_the_others_land(service: Service) -> None:
    before = service.counts()
    service.offer("chatty", noise_jpegs(RATE + 10, 32, 32, seed=2))
    hoarder = noise_jpegs(16, 400, 400, seed=3)  # about 320 KB each: 4 MiB holds 13
    service.offer("hoarder", hoarder)
    service.offer("good", noise_jpegs(3, 32, 32, seed=4))
    grew = service.settled(before, RATE + 10 + len(hoarder) + 3)
    rate_limited, over_quota = grew.get("rate_limited", 0), grew.get("over_quota", 0)
    assert 5 <= rate_limited <= 10, "a minute's burst, then one sample every 2 s"
    assert service.samples("chatty")[0] == RATE + 10 - rate_limited
    held, fits = 0, 0
    for jpeg in hoarder:  # in the order they arrive, each admitted while the device's bytes stay in its quota
        if held + len(jpeg) <= QUOTA_MIB * 2**20:
            held, fits = held + len(jpeg), fits + 1
    assert 0 < fits < len(hoarder)
    assert service.samples("hoarder") == (fits, held)
    assert over_quota == len(hoarder) - fits
    assert service.samples("good")[0] == 3, "the other device's samples land"


@pytest.mark.services
def test_memory_stays_bounded_under_large_samples(service: Service) -> None:
    """40 samples: 20 headers claiming 8192x8192 and 20 real 3.4 MB pictures from 20 devices at once. Before,
    the service decoded each at full size: peak RSS 91 -> 563 MiB. Now the headers are refused unread and the
    in-flight bound drops what cannot be checked in time: about +15-60 MiB."""
    rss = psutil.Process(service.process.pid).memory_info().rss / 2**20
    before = service.counts()
    crafted = jpeg_claiming(noise_jpegs(1, 48, 48, seed=5)[0], 8192, 8192)
    service.offer("huge-headers", [crafted] * 20)
    picture = noise_jpegs(1, 1300, 1300, seed=6)[0]
    big = [picture[:2] + b"\xff\xfe\x00\x04" + n.to_bytes(2, "big") + picture[2:] for n in range(20)]  # a comment each
    assert all(3 * 2**20 < len(jpeg) < 4 * 2**20 for jpeg in big)
    for n, jpeg in enumerate(big):
        service.offer(f"big-{n}", [jpeg])
    overloaded = service.settled(before, 40).get("overloaded", 0)
    stored = sum(service.samples(f"big-{n}")[0] for n in range(20))
    assert stored + overloaded == 20
    assert stored >= IN_FLIGHT_MIB // 4, "what fits in flight is always taken"
    grown = psutil.Process(service.process.pid).memory_info().rss / 2**20 - rss
    print(f"RSS {rss:.0f} MiB, +{grown:.0f} MiB after 40 large samples ({stored} stored, {overloaded} overloaded)")
    assert grown < 150


def test_retention_deletes_what_nobody_labelled_pictures_too_and_keeps_the_labelled(db_url: str, tmp_path) -> None:
    db, data = connect(db_url), tmp_path / "data"
    (data / "datasets" / "flowers").mkdir(parents=True)
    labelled, discarded, old, recent = (s.id for s in store_samples(db, data, 4))
    db.execute("UPDATE samples SET received = ? WHERE id <> ?", (time.time() - 15 * DAY_S, recent))
    kept = data / labelling.label(db, data, labelled, "daisy")
    labelling.discard(db, data, discarded)
    metrics, usage = Metrics(), []
    try:
        assert Retention(db, data, 14, metrics, usage.append, batch=1).sweep() == 2
        remaining = {row[0] for row in db.query("SELECT id FROM samples")}
        assert remaining == {labelled, recent}
        assert [sample_path(data, i).exists() for i in (labelled, discarded, old, recent)] == [True, False, False, True]
        assert kept.exists(), "the labelled sample's training image"
        assert metrics.counts["samples_expired"] == 2
        assert usage == [{"cam-1": sample_path(data, recent).stat().st_size}], "the quotas get the store's own count"
        assert Retention(db, data, None, metrics).sweep() == 0, "none: kept forever"
    finally:
        db.close()


def test_admission_counts_rate_quota_and_bytes_in_flight() -> None:
    now = [0.0]
    admission = Admission(
        SampleLimits(max_bytes=100, per_minute=2, quota_bytes=150, in_flight_bytes=200), lambda: now[0]
    )
    assert admission.admit("a", 101) == "oversized"
    assert [admission.admit("a", 60), admission.admit("a", 60), admission.admit("a", 60)] == [
        None,
        None,
        "rate_limited",
    ]
    now[0] += 30  # one token back
    assert admission.admit("a", 60) == "over_quota", "120 held, 60 more is past 150"
    admission.settle("a", 60, stored=True)
    admission.settle("a", 60, stored=False)
    now[0] += 30
    assert admission.admit("a", 60) is None, "60 stored + 60 in flight"
    assert admission.admit("b", 100) is None
    assert admission.admit("c", 50) == "overloaded", "160 in flight, 50 more is past 200"
    assert admission.admit("c", 40) is None
    assert admission.in_flight == 200
    for device_id, size in (("a", 60), ("b", 100), ("c", 40)):
        admission.settle(device_id, size, stored=False)
    admission.refresh({"a": 0})  # a person labelled a's sample
    now[0] += 30
    assert admission.admit("a", 90) is None, "its quota is free again"
    now[0] += 60
    admission.refresh({})
    assert not admission._buckets, "full buckets are forgotten: a new device gets one"


def test_refusals_are_logged_once_a_minute_per_device_and_reason(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    refusals = RefusalLog(clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "cloud.aggregator.quotas"):
        for _ in range(100):
            refusals.refused("cam-1", "rate_limited", "rate_limited (10 bytes)")
        refusals.refused("cam-2", "rate_limited", "rate_limited (10 bytes)")
        now[0] += 60
        refusals.refused("cam-1", "rate_limited", "rate_limited (10 bytes)")
    assert [r.getMessage() for r in caplog.records] == [
        "sample from cam-1 refused: rate_limited (10 bytes)",
        "sample from cam-2 refused: rate_limited (10 bytes)",
        "sample from cam-1 refused: rate_limited (10 bytes) (99 more since the last line)",
    ]


def test_the_limits_come_from_the_serve_flags_and_off_lifts_one() -> None:
    cfg = build(ServeConfig, {"sample-retain-days": "off"}, {"sample_rate_per_min": "off", "sample_quota_mib": "2.5"})
    assert cfg.sample_retain_days is None
    assert ServeConfig().sample_retain_days == 14
    assert sample_limits(cfg) == SampleLimits(per_minute=None, quota_bytes=int(2.5 * 2**20))
