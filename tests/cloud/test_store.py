"""Multi-row inserts, on SQLite and PostgreSQL: every row lands once whatever the batch size, rows
already there are skipped and not counted, and the statements come in a handful of sizes."""

import pytest

from cloud.store import connect
from cloud.store.db import ROWS_PER_INSERT, _statement_sizes

INSERT = "INSERT INTO devices (device_id, last_seen)"


@pytest.mark.parametrize("n", [0, 1, 7, ROWS_PER_INSERT, ROWS_PER_INSERT + 1, 3 * ROWS_PER_INSERT - 1])
def test_insert_rows_stores_each_row_once_and_counts_what_it_inserted(db_url, n) -> None:
    db = connect(db_url)
    try:
        with db.transaction() as cur:
            assert cur.insert_rows(INSERT, [(f"cam-{i}", float(i)) for i in range(0, n, 2)]) == len(range(0, n, 2))
        with db.transaction() as cur:
            inserted = cur.insert_rows(INSERT, [(f"cam-{i}", float(i)) for i in range(n)], "ON CONFLICT DO NOTHING")
        assert inserted == n - len(range(0, n, 2))
        assert db.query("SELECT COUNT(*), COALESCE(SUM(last_seen), 0) FROM devices")[0] == (n, sum(range(n)))
    finally:
        db.close()


def test_a_batch_of_any_size_uses_few_distinct_statements() -> None:
    sizes = {size for n in range(3 * ROWS_PER_INSERT) for size in _statement_sizes(n)}
    assert all(sum(_statement_sizes(n)) == n for n in range(3 * ROWS_PER_INSERT))
    assert len(sizes) <= ROWS_PER_INSERT.bit_length()
