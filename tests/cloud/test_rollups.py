"""Counters and per-minute rollups, on SQLite and PostgreSQL: after random batches with duplicates and
gaps from several cameras written through the aggregator's writer, they and every window read (of a
device, and of one camera) agree with a full scan of what should have been stored (the first copy of
each (device_id, seq)), and still do once old raw rows are deleted; the migrations fill them once from
rows stored before them, which name no camera."""

import itertools
import math
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.aggregator.windows import fleet_windows
from cloud.aggregator.writer import Batch, write
from cloud.store import cameras as camera_store
from cloud.store import connect, rollups
from cloud.store import db as db_module
from cloud.store import devices as device_store
from cloud.store import samples as sample_store
from cloud.store import windows as window_store
from cloud.store.predictions import prediction_row
from cloud.store.schema import LOW, MIGRATIONS, WIDTHS
from common import protocol

BASE = 60 * 28_333_334.0  # a minute boundary, in November 2023
LABELS = ["daisy", "roses", "tulips"]
CAMERAS = [None, "door", "yard"]  # None: a prediction that names no camera

# (device, seq, seconds after BASE, label, score, model version, camera): seqs drawn from a small range repeat and skip
PREDICTION = st.tuples(
    st.integers(0, 2),
    st.integers(1, 25),
    st.one_of(st.floats(0, 300, allow_nan=False), st.sampled_from([0.0, 60.0, math.nextafter(120.0, 0), 180.0])),
    st.sampled_from(LABELS),
    st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9, 1.0]),
    st.sampled_from(["1", "2"]),
    st.sampled_from(CAMERAS),
)
BATCHES = st.lists(st.lists(PREDICTION, min_size=1, max_size=30), min_size=1, max_size=4)


def row(device_id: str, seq: int, ts: float, label: str, score: float, version: str, camera=None) -> tuple:
    return prediction_row(
        device_id,
        protocol.Prediction(
            device_id=device_id, seq=seq, ts=ts, camera=camera,
            model=protocol.ModelRef(name="flowers", version=version),
            top_k=[protocol.Score(label=label, score=score)],
            latency_ms=protocol.Latency(infer=seq % 7 + 0.5, total=seq % 7 + 2.25),
        ).model_dump(),
        ts,
    )  # fmt: skip


@pytest.fixture
def store(db_url: str):
    db = connect(db_url)
    yield db
    db.close()


def scan(db, device_ids: list[str]) -> list[tuple]:
    """The raw rows of these devices: (device_id, seq, ts, model_version, label, score, infer_ms, total_ms, camera)."""
    marks = ", ".join("?" for _ in device_ids)
    return db.query(
        "SELECT device_id, seq, ts, model_version, label, score, infer_ms, total_ms, camera FROM predictions "
        f"WHERE device_id IN ({marks})",
        device_ids,
    )


def expected_buckets(rows: list[tuple]) -> dict[tuple, tuple]:
    groups: dict[tuple, list] = defaultdict(lambda: [0, 0.0, 0, math.inf, -math.inf, 0.0, 0.0])
    for (device_id, _, ts, version, label, score, infer, total, camera), width in itertools.product(rows, WIDTHS):
        g = groups[(device_id, width, int(ts // width), camera or "", "flowers", version, label)]
        g[0] += 1
        g[1] += score
        g[2] += score < LOW
        g[3], g[4] = min(g[3], ts), max(g[4], ts)
        g[5] += infer
        g[6] += total
    return {k: tuple(v) for k, v in groups.items()}


def stored_buckets(db, device_ids: list[str]) -> dict[tuple, tuple]:
    marks = ", ".join("?" for _ in device_ids)
    rows = db.query(
        "SELECT device_id, width, bucket, camera, model_name, model_version, label, predictions, score_sum, low, "
        f"first_ts, last_ts, infer_ms_sum, total_ms_sum FROM prediction_rollups WHERE device_id IN ({marks})",
        device_ids,
    )
    return {tuple(r[:7]): tuple(r[7:]) for r in rows}


def assert_buckets_match(db, device_ids: list[str], rows: list[tuple]) -> None:
    expected, stored = expected_buckets(rows), stored_buckets(db, device_ids)
    assert stored.keys() == expected.keys()
    for key, (n, score, low, first, last, infer, total) in expected.items():
        assert stored[key] == (n, pytest.approx(score), low, first, last, pytest.approx(infer), pytest.approx(total))


def assert_windows_match(db, device_ids: list[str], rows: list[tuple], since: float, camera=None) -> None:
    """Each device's window (of `camera`, when named) through the rollups equals the raw rows captured since
    `since`."""
    windows = fleet_windows(db, device_ids, since, camera=camera)
    for device_id in device_ids:
        mine = [r for r in rows if r[0] == device_id and r[2] >= since and camera in (None, r[8])]
        w = windows[device_id]
        assert w.total.predictions == len(mine)
        assert w.total.score_sum == pytest.approx(sum(r[5] for r in mine))
        assert w.total.low == sum(r[5] < LOW for r in mine)
        assert {label: t.predictions for label, t in w.labels.items()} == {
            label: n for label in LABELS if (n := sum(r[4] == label for r in mine))
        }
        assert (w.first_ts, w.last_ts) == ((min(r[2] for r in mine), max(r[2] for r in mine)) if mine else (None, None))
        assert w.infer_ms_sum == pytest.approx(sum(r[6] for r in mine))
        assert w.cameras == {c or "": n for c in CAMERAS if (n := sum(r[8] == c for r in mine))}
        assert window_store.label_counts(db, device_id, since, camera) == {
            label: n for label in LABELS if (n := sum(r[4] == label for r in mine))
        }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=BATCHES, cut=st.floats(0, 300, allow_nan=False))
def test_counters_and_rollups_equal_a_full_scan(store, tmp_path: Path, batches, cut: float) -> None:
    run = uuid.uuid4().hex[:8]  # each example its own devices, in the one store
    device_ids = [f"{run}-{d}" for d in range(3)]
    first_copy: dict[tuple[str, int], tuple] = {}
    sent: dict[str, int] = defaultdict(int)
    captured: dict[tuple[int, int], float] = {}  # a resend carries the first copy's capture time, as devices do
    for batch in batches:
        rows = [row(device_ids[d], seq, BASE + captured.setdefault((d, seq), t), label, score, v, c)
                for d, seq, t, label, score, v, c in batch]  # fmt: skip
        stored, duplicates = write(store, tmp_path, Batch(predictions=rows))
        new = {(r[0], r[1]) for r in rows} - first_copy.keys()
        assert (len(stored), duplicates) == (len(new), len(rows) - len(new))
        assert {(r[0], r[1]) for r in stored} == new, "the rows stored are the first copies, and only those"
        for r in rows:
            first_copy.setdefault((r[0], r[1]), r)
            sent[r[0]] += 1
    raw = scan(store, device_ids)
    assert sorted(raw) == sorted((r[0], r[1], r[2], r[5], r[6], r[7], r[8], r[9], r[3]) for r in first_copy.values())

    fleet = {d.device_id: d for d in device_store.fleet(store) if d.device_id in device_ids}
    for device_id in {r[0] for r in raw}:
        seqs = [r[1] for r in raw if r[0] == device_id]
        d = fleet[device_id]
        assert (d.predictions, d.first_seq, d.last_seq) == (len(seqs), min(seqs), max(seqs))
        assert d.duplicates == sent[device_id] - len(seqs)
        assert d.missing == max(seqs) - min(seqs) + 1 - len(seqs)
    named = {(c.device_id, c.camera): c.predictions for cs in camera_store.fleet(store).values() for c in cs}
    assert {k: n for k, n in named.items() if k[0] in device_ids} == {
        (d, c): n for d in device_ids for c in CAMERAS[1:] if (n := sum(r[0] == d and r[8] == c for r in raw))
    }
    assert_buckets_match(store, device_ids, raw)
    for since in (BASE, BASE + cut, BASE + 60, BASE + 70, BASE + 299.5):
        assert_windows_match(store, device_ids, raw, since)
    assert_windows_match(store, device_ids, raw, BASE + cut, camera="door")

    # Retention: raw rows before a minute boundary go; counters and rollups stay, later windows agree.
    boundary = BASE + (cut // 60) * 60
    store.execute(
        f"DELETE FROM predictions WHERE ts < ? AND device_id IN ({', '.join('?' * 3)})", (boundary, *device_ids)
    )
    assert {d.device_id: d for d in device_store.fleet(store) if d.device_id in device_ids} == fleet
    assert_buckets_match(store, device_ids, raw)
    assert_windows_match(store, device_ids, raw, boundary + cut % 60)
    assert_windows_match(store, device_ids, raw, boundary + cut % 60, camera="yard")


def test_the_migration_fills_counters_and_minutes_from_stored_rows(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "MIGRATIONS", MIGRATIONS[:2])  # a store as the writer before them left it
    old = connect(db_url)
    boundaries = [BASE, math.nextafter(BASE + 60, 0), BASE + 60, BASE + 61.5, BASE + 3600]
    rows = [row("cam-1", seq, ts, LABELS[seq % 3], 0.2 * (seq % 5), "1") for seq, ts in enumerate(boundaries, 10)]
    rows += [row("cam-2", seq, BASE + seq, "daisy", 0.9, "2") for seq in (1, 2, 5)]
    with old.transaction() as cur:
        cur.insert_rows("predictions", ("device_id", "seq", "ts", "model_name", "model_version", "label", "score",
                        "infer_ms", "total_ms", "top_k", "received"), [r[:3] + r[4:] for r in rows])  # fmt: skip
        cur.execute("INSERT INTO devices (device_id, last_seen) VALUES ('cam-1', 1), ('cam-2', 1), ('cam-3', 1)")
        cur.execute(
            "INSERT INTO samples (id, device_id, seq, ts, received, model_name, model_version, predicted, score, "
            "reason, bytes) VALUES ('s1', 'cam-1', 10, 1, 1, 'flowers', '1', 'daisy', 0.3, 'random', 9)"
        )
    old.close()
    monkeypatch.undo()

    db = connect(db_url)
    try:
        fleet = {
            d.device_id: (d.predictions, d.first_seq, d.last_seq, d.duplicates, d.missing)
            for d in device_store.fleet(db)
        }
        assert fleet == {"cam-1": (5, 10, 14, 0, 0), "cam-2": (3, 1, 5, 0, 2), "cam-3": (0, 0, 0, 0, 0)}
        raw = scan(db, ["cam-1", "cam-2"])
        assert_buckets_match(db, ["cam-1", "cam-2"], raw)
        minutes = {k[2] - int(BASE // 60) for k in stored_buckets(db, ["cam-1"]) if k[1] == 60}
        assert minutes == {0, 1, 60}
        assert rollups.bucket(math.nextafter(BASE + 60, 0), 60) == int(BASE // 60), "the last float before a minute"
        for since in (BASE, BASE + 30, BASE + 59.5, BASE + 60, BASE + 61.5):
            assert_windows_match(db, ["cam-1", "cam-2"], raw, since)
        assert {r[8] for r in raw} == {None}, "old rows name no camera"
        assert sample_store.get(db, "s1").camera is None
        assert camera_store.fleet(db) == {}
        new = [row("cam-1", 15, BASE + 62, "daisy", 0.9, "1"), row("cam-1", 16, BASE + 62.5, "roses", 0.2, "1", "door")]
        write(db, tmp_path, Batch(predictions=[rows[0], *new]))
        cam1 = next(d for d in device_store.fleet(db) if d.device_id == "cam-1")
        assert (cam1.predictions, cam1.last_seq, cam1.duplicates) == (7, 16, 1)
        raw = scan(db, ["cam-1", "cam-2"])
        assert_buckets_match(db, ["cam-1", "cam-2"], raw)
        assert_windows_match(db, ["cam-1"], raw, BASE + 61, camera="door")
        assert [(c.camera, c.predictions) for c in camera_store.fleet(db)["cam-1"]] == [("door", 1)]
    finally:
        db.close()
