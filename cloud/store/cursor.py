"""The cursor every store module writes through: the same SQL (`?` placeholders) on SQLite and PostgreSQL,
and the bulk inserts of the ingest's batches, each done the way its database takes rows fastest."""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Any

ROWS_PER_INSERT = 512  # 12 columns: far below SQLite's 32766 parameters


def _statement_sizes(n: int) -> list[int]:
    """Full statements, then the rest in powers of two: a handful of distinct statements that
    SQLite's statement cache keeps, where one per batch size filled it with 128 big ones."""
    rest = n % ROWS_PER_INSERT
    return [ROWS_PER_INSERT] * (n // ROWS_PER_INSERT) + [
        1 << b for b in reversed(range(rest.bit_length())) if rest >> b & 1
    ]


def _statements(insert: str, rows: Sequence[Sequence[Any]], tail: str) -> Iterator[tuple[str, list[Any]]]:
    start = 0
    for size in _statement_sizes(len(rows)):
        chunk = rows[start : start + size]
        start += size
        row = "(" + ", ".join("?" * len(chunk[0])) + ")"
        yield f"{insert} VALUES {', '.join([row] * size)} {tail}", list(chain.from_iterable(chunk))


class Cursor:
    def __init__(self, cursor: Any, translate, dialect: str) -> None:
        self._cursor = cursor
        self._translate = translate
        self.dialect = dialect
        self._staged: set[str] = set()  # PostgreSQL: the staging tables this transaction filled

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cursor.execute(self._translate(sql), params)
        return self._cursor.rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        self._cursor.executemany(self._translate(sql), rows)
        return self._cursor.rowcount

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], conflict: str = "") -> int:
        """Insert the rows (values in `columns`' order), `conflict` the ON CONFLICT clause, if any; returns the
        rows inserted. SQLite takes them in multi-row VALUES statements, each run with the GIL released once
        (executemany takes it back for every row, and fights the MQTT thread for it). PostgreSQL takes them
        through COPY into a staging table and one INSERT … SELECT from it, in the order of the columns (rows that
        two instances both write are locked in one order): psycopg parses a statement of thousands of
        placeholders in Python each time (it caches none past 50), slower than the server runs it."""
        if not rows:
            return 0
        names = ", ".join(columns)
        insert = f"INSERT INTO {table} ({names})"
        if self.dialect == "postgresql":
            staging = self._stage(table, columns, rows)
            return self.execute(f"{insert} SELECT {names} FROM {staging} ORDER BY {names} {conflict}")
        return sum(self.execute(sql, params) for sql, params in _statements(insert, rows, conflict))

    def _stage(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
        """`rows` in a temporary table of this session with `columns` of `table` (their types, no constraints),
        emptied at each commit, through COPY; returns its name. Created in the transaction, if it is missing: a
        rolled-back one takes it away again."""
        names = ", ".join(columns)
        staging = f"staged_{table}_{zlib.crc32(names.encode()):08x}"
        self._cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} ON COMMIT DELETE ROWS "
                             f"AS SELECT {names} FROM {table} WITH NO DATA")  # fmt: skip
        if staging in self._staged:
            self._cursor.execute(f"TRUNCATE {staging}")
        self._staged.add(staging)
        with self._cursor.copy(f"COPY {staging} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return staging

    def insert_new(self, table: str, columns: Sequence[str], rows: Sequence[tuple]) -> Sequence[tuple]:
        """Insert the rows that the table's unique keys do not already hold (ON CONFLICT DO NOTHING, a row
        repeated in `rows` inserted once); returns those inserted, in `columns`' order. When every row went in,
        that is `rows` itself: no RETURNING clause, which costs SQLite more than the insert. Otherwise they are
        read back: on SQLite by rowid (a new row's is above every row there before it, and the transaction
        holds the write lock), on PostgreSQL by inserting again from a savepoint with RETURNING."""
        ignore, names = "ON CONFLICT DO NOTHING", ", ".join(columns)
        if self.dialect == "sqlite":
            self.execute(f"SELECT COALESCE(MAX(rowid), 0) FROM {table}")
            (before,) = self.fetchall()[0]
            if self.insert_rows(table, columns, rows, ignore) == len(rows):
                return rows
            self.execute(f"SELECT {names} FROM {table} WHERE rowid > ? ORDER BY rowid", (before,))
            return self.fetchall()
        if not rows:
            return rows
        staging = self._stage(table, columns, rows)
        insert = f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} {ignore}"  # as given: a repeat's first
        self.execute("SAVEPOINT insert_new")
        if self.execute(insert) < len(rows):
            self.execute("ROLLBACK TO SAVEPOINT insert_new")
            self.execute(f"{insert} RETURNING {names}")
            rows = self.fetchall()
        self.execute("RELEASE SAVEPOINT insert_new")
        return rows

    def fetchall(self) -> list[tuple]:
        return self._cursor.fetchall()
