"""Retention of raw predictions, on SQLite and PostgreSQL: old rows (and on PostgreSQL, day partitions)
go, counters and rollups stay right, nothing inside the window is lost, ingest keeps storing while it
runs, and predictions captured before the window are refused and counted; the migration turns an
existing PostgreSQL table into the partitioned one, rows and exactly-once kept."""

import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from cloud.aggregator.ingest import Ingest
from cloud.aggregator.metrics import Metrics
from cloud.aggregator.retention import DAY_S, GRACE_S, PredictionRetention, Retention
from cloud.aggregator.windows import fleet_windows
from cloud.aggregator.writer import Batch, write
from cloud.options import ServeConfig
from cloud.store import connect, partitions
from cloud.store import db as db_module
from cloud.store import devices as device_store
from cloud.store.predictions import prediction_row
from cloud.store.schema import MIGRATIONS
from common import protocol
from common.mqtt import url
from tests.support.fleet import Publisher, predicted
from tests.support.waiting import wait_for

TODAY = time.time() // DAY_S * DAY_S
NOW = TODAY + DAY_S / 2  # noon: the cutoffs below fall inside their days
RETAIN = PredictionRetention(prediction_days=7, rollup_days=8)
LABELS = ["daisy", "roses", "tulips"]


def row(device_id: str, seq: int, ts: float, label: str = "daisy") -> tuple:
    return prediction_row(device_id, predicted(device_id, seq, label, ts=ts).model_dump(), ts)


@pytest.fixture
def store(db_url: str):
    db = connect(db_url)
    yield db
    db.close()


def raw(db) -> set[tuple[str, int]]:
    return set(db.query("SELECT device_id, seq FROM predictions"))


def buckets(db, width: int) -> set[tuple[str, int]]:
    return set(db.query("SELECT device_id, bucket FROM prediction_rollups WHERE width = ?", (width,)))


def test_old_rows_and_partitions_go_counters_rollups_and_the_window_stay(store, tmp_path: Path) -> None:
    retention = Retention(store, tmp_path, None, Metrics(), predictions=RETAIN, prediction_batch=7)
    retention.expire_predictions(NOW - 3 * DAY_S)  # three days ago: partitions from ten days back
    ages = {"dropped": 9 * DAY_S, "cut": 7 * DAY_S + GRACE_S + 6 * 3600, "kept": 7 * DAY_S - 1, "recent": 60}
    rows = {age: [row(f"cam-{d}", 100 * i + n, NOW - s + n, LABELS[n % 3]) for d in (1, 2) for n in range(20)]
            for i, (age, s) in enumerate(ages.items())}  # fmt: skip
    for part in rows.values():
        write(store, tmp_path, Batch(predictions=part))
    fleet = device_store.fleet(store)
    window = fleet_windows(store, ["cam-1", "cam-2"], NOW - 7 * DAY_S)
    tens, minutes = buckets(store, 10), buckets(store, 60)

    expired = retention.expire_predictions(NOW)

    ids = {age: {(r[0], r[1]) for r in part} for age, part in rows.items()}
    remaining = raw(store)
    assert ids["kept"] | ids["recent"] <= remaining, "nothing inside the window is lost"
    assert not ids["dropped"] & remaining
    if store.dialect == "sqlite":
        assert remaining == ids["kept"] | ids["recent"]
        assert expired == 80
        assert retention.metrics.counts["predictions_expired"] == 80
    else:  # a day goes whole: the cut rows' day ends after the cutoff
        assert remaining == ids["cut"] | ids["kept"] | ids["recent"]
        names = partitions.names(store)
        assert names[0] == "predictions_" + time.strftime("%Y%m%d", time.gmtime(NOW - 7 * DAY_S - GRACE_S))
        assert len(names) == 1 + 7 + 3  # the oldest day kept, the next seven to today, three ahead
        assert retention.metrics.counts["prediction_partitions_dropped"] == 3
    assert device_store.fleet(store) == fleet, "counters are lifetime totals"
    assert fleet_windows(store, ["cam-1", "cam-2"], NOW - 7 * DAY_S) == window
    raw_ten = int((NOW - 7 * DAY_S - GRACE_S) // 10)
    assert buckets(store, 10) == {b for b in tens if b[1] >= raw_ten}
    assert buckets(store, 60) == {b for b in minutes if b[1] >= int((NOW - 8 * DAY_S - GRACE_S) // 60)}
    assert {b for b in buckets(store, 60) if b[1] < raw_ten // 6}, "minutes outlive the raw rows"


def test_ingest_keeps_storing_while_retention_deletes(store, tmp_path: Path) -> None:
    retention = Retention(store, tmp_path, None, Metrics(), predictions=RETAIN, prediction_batch=200)
    retention.expire_predictions(NOW - 3 * DAY_S)  # PostgreSQL: the old rows' day gets its partition
    old = [row(f"cam-{d}", seq, NOW - 10 * DAY_S + seq, "daisy") for d in range(4) for seq in range(3000)]
    write(store, tmp_path, Batch(predictions=old))
    done = threading.Event()
    written: list[tuple[str, int]] = []
    stalls: list[float] = []

    def ingest() -> None:
        seq = 0
        while not done.is_set() or seq < 50:
            batch = [row("cam-live", seq + i, time.time()) for i in range(10)]
            started = time.monotonic()
            write(store, tmp_path, Batch(predictions=batch))
            stalls.append(time.monotonic() - started)
            written.extend((r[0], r[1]) for r in batch)
            seq += 10
            time.sleep(0.005)  # the ingest's batch wait: it does not hold the store back to back

    writer = threading.Thread(target=ingest)
    writer.start()
    try:
        retention.expire_predictions(NOW)
    finally:
        done.set()
        writer.join()
    remaining = raw(store)
    assert set(written) <= remaining
    assert len(written) >= 50
    assert not {(r[0], r[1]) for r in old} & remaining
    assert device_store.fleet(store)[0].predictions == 3000
    assert max(stalls) < 2.0, f"the writer waited {max(stalls):.2f}s"


def test_too_old_predictions_are_refused_and_counted(broker, tmp_path: Path) -> None:
    db = connect(f"sqlite:///{tmp_path / 'edgeloop.db'}")
    ingest = Ingest(db, tmp_path / "data", url.parse(broker.url), protocol.Topics(), batch_wait_s=0.02,
                    retention=PredictionRetention(prediction_days=1))  # fmt: skip
    ingest.start()
    try:
        wait_for(lambda: ingest.connected, 10, "the aggregator to connect")
        time.sleep(0.3)  # its subscriptions are in place
        fleet = Publisher(broker.port)
        now = time.time()
        ages = [2 * DAY_S, DAY_S + 60, DAY_S - 60, 0]  # a backlog: the first two older than a day
        batched = [predicted("cam-1", seq, "daisy", ts=now - age).batched()
                   for seq, age in enumerate(ages, 1)]  # fmt: skip
        fleet.send(protocol.Topics().predictions("cam-1"), protocol.batch_payload("cam-1", batched)).wait_for_publish(5)
        fleet.close()
        wait_for(lambda: ingest.metrics.counts["stored"] + ingest.metrics.counts["too_old"] >= 4, 10, "ingest")
        assert ingest.metrics.counts["too_old"] == 2
        assert ingest.metrics.counts["stored"] == 2
        assert raw(db) == {("cam-1", 3), ("cam-1", 4)}
        scraped = CollectorRegistry()
        scraped.register(ingest.metrics)
        assert b"edgeloop_too_old_total 2.0" in generate_latest(scraped)
    finally:
        ingest.stop()
        db.close()


def test_the_migration_partitions_an_existing_table(db_url: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(db_module, "MIGRATIONS", MIGRATIONS[:4])  # a store as the writer before it left it
    old = connect(db_url)
    rows = [row("cam-1", seq, NOW - age) for seq, age in enumerate([3000 * DAY_S, 2 * DAY_S, DAY_S, 0], 1)]
    write(old, tmp_path, Batch(predictions=rows))
    old.close()
    monkeypatch.undo()

    db = connect(db_url)
    try:
        assert raw(db) == {("cam-1", seq) for seq in range(1, 5)}
        stored, duplicates = write(db, tmp_path, Batch(predictions=[rows[1], row("cam-1", 5, NOW)]))
        assert ([r[1] for r in stored], duplicates) == ([5], 1), "exactly once"
        if db.dialect == "postgresql":
            days = [time.strftime("%Y%m%d", time.gmtime(NOW - age)) for age in (2 * DAY_S, DAY_S, 0)]
            assert partitions.names(db) == [f"predictions_{d}" for d in days]
            assert db.query("SELECT seq FROM predictions_default") == [(1,)], "older than 1000 days"
            assert partitions.create(db, partitions.day(NOW - 3000 * DAY_S), partitions.day(NOW - 3000 * DAY_S)) == 1
            assert db.query("SELECT COUNT(*) FROM predictions_default") == [(0,)], "its rows moved to their day"
            assert raw(db) == {("cam-1", seq) for seq in range(1, 6)}
    finally:
        db.close()


def test_retention_must_outlive_the_windows_read_from_raw_rows() -> None:
    assert (ServeConfig().retain_days, ServeConfig().rollup_retain_days) == (7, 400)
    assert ServeConfig(retain_days="off").retain_days is None
    with pytest.raises(ValueError, match="longest window"):
        ServeConfig(retain_days=1, trigger_window_s=DAY_S)
    with pytest.raises(ValueError, match="at least --retain-days"):
        ServeConfig(retain_days=30, rollup_retain_days=10)
