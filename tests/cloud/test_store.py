"""The store's layer, on SQLite and PostgreSQL. Multi-row inserts: every row lands once whatever the batch
size, rows already there are skipped and not counted, and the statements come in a handful of sizes.
Several instances: reads and writes in progress never wait for each other, and instances starting
together migrate once."""

import threading
import time

import pytest

from cloud.store import connect
from cloud.store.cursor import ROWS_PER_INSERT, _statement_sizes
from cloud.store.schema import MIGRATIONS

COLUMNS = ("device_id", "last_seen")
INSERT = "INSERT INTO devices (device_id, last_seen)"


@pytest.mark.parametrize("n", [0, 1, 7, ROWS_PER_INSERT, ROWS_PER_INSERT + 1, 3 * ROWS_PER_INSERT - 1])
def test_insert_rows_stores_each_row_once_and_counts_what_it_inserted(db_url, n) -> None:
    db = connect(db_url)
    try:
        evens = [(f"cam-{i}", float(i)) for i in range(0, n, 2)]
        with db.transaction() as cur:
            assert cur.insert_rows("devices", COLUMNS, evens) == len(evens)
            assert cur.insert_rows("devices", COLUMNS, evens[:2], "ON CONFLICT DO NOTHING") == 0, "again, at once"
        with db.transaction() as cur:
            inserted = cur.insert_rows(
                "devices", COLUMNS, [(f"cam-{i}", float(i)) for i in range(n)], "ON CONFLICT DO NOTHING"
            )
        assert inserted == n - len(range(0, n, 2))
        assert db.query("SELECT COUNT(*), COALESCE(SUM(last_seen), 0) FROM devices")[0] == (n, sum(range(n)))
    finally:
        db.close()


def test_a_batch_of_any_size_uses_few_distinct_statements() -> None:
    sizes = {size for n in range(3 * ROWS_PER_INSERT) for size in _statement_sizes(n)}
    assert all(sum(_statement_sizes(n)) == n for n in range(3 * ROWS_PER_INSERT))
    assert len(sizes) <= ROWS_PER_INSERT.bit_length()


COUNT = "SELECT COUNT(*) FROM devices"


def _held(open_cm, action, holding: threading.Event, release: threading.Event) -> threading.Thread:
    """A thread inside `open_cm()` (a read or a write transaction), `action` done, until `release`."""

    def run() -> None:
        with open_cm() as cur:
            action(cur)
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=run)
    thread.start()
    assert holding.wait(10)
    return thread


def test_a_read_and_a_write_in_progress_never_wait_for_each_other(db_url) -> None:
    """Readers have their own connections: a long read does not hold up the ingest's commit, nor an
    uncommitted batch the API's reads (one connection taking turns made each wait for the other)."""
    db = connect(db_url)
    try:
        db.execute(f"{INSERT} VALUES ('cam-0', 0)")
        holding, release = threading.Event(), threading.Event()
        reader = _held(db.reading, lambda cur: (cur.execute("BEGIN"), cur.execute(COUNT)), holding, release)
        start = time.monotonic()
        db.execute(f"{INSERT} VALUES ('cam-1', 1)")
        assert time.monotonic() - start < 2
        assert db.query(COUNT) == [(2,)]
        release.set()
        reader.join()

        holding, release = threading.Event(), threading.Event()
        writer = _held(db.transaction, lambda cur: cur.execute(f"{INSERT} VALUES ('cam-2', 2)"), holding, release)
        start = time.monotonic()
        assert db.query(COUNT) == [(2,)]
        assert time.monotonic() - start < 2
        release.set()
        writer.join()
        assert db.query(COUNT) == [(3,)]
    finally:
        db.close()


def test_instances_starting_together_migrate_once(db_url) -> None:
    """Four instances connect to a new store at once: each migration is applied once, none fails."""
    barrier, opened, errors = threading.Barrier(4), [], []

    def start() -> None:
        barrier.wait()
        try:
            opened.append(connect(db_url))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert errors == []
        versions = opened[0].query("SELECT version FROM schema_version ORDER BY version")
        assert [v for (v,) in versions] == list(range(1, len(MIGRATIONS) + 1))
    finally:
        for db in opened:
            db.close()


def test_sqlite_keeps_a_prediction_once_in_the_index_the_windows_read(tmp_path) -> None:
    """One B-tree for all three (migration 6): the unique (device_id, ts, seq) index is the key, the windows'
    (device_id, ts) index and the one retention deletes a device's oldest rows through; no primary key or
    time index beside it."""
    db = connect(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        indexes = {name: unique for _, name, unique, *_ in db.query("PRAGMA index_list(predictions)")}
        assert indexes == {"predictions_by_time": 1}
        window = "SELECT COUNT(*) FROM predictions WHERE device_id = ? AND ts >= ?"
        oldest = "SELECT rowid FROM predictions WHERE device_id = ? AND ts < ? LIMIT 1000"
        for read in (window, oldest):
            plan = " ".join(str(step[-1]) for step in db.query(f"EXPLAIN QUERY PLAN {read}", ("cam-1", 0.0)))
            assert "USING COVERING INDEX predictions_by_time (device_id=? AND ts" in plan, plan
    finally:
        db.close()
