"""One thin layer over sqlite3 and psycopg: the same SQL (written with `?` placeholders) on both,
transactions, and the schema created and migrated by the service itself.

Writes take turns on one connection (the ingest writer's batches, labels, jobs); reads (the API, the
dashboard, `/metrics`, the triggers) take a connection of a small pool beside it, so a read never waits
behind a batch being committed, nor a batch behind a long read. Several instances may share one store:
SQLite's writers queue for its lock (BEGIN IMMEDIATE, up to the busy timeout), and on PostgreSQL the
instances starting together migrate once, one after the other, under an advisory lock."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cloud.store.cursor import Cursor
from cloud.store.pool import Pool, StoreError, in_transaction
from cloud.store.schema import MIGRATIONS

log = logging.getLogger(__name__)

READERS = 4  # reads at once per instance: PostgreSQL serves a connection each (the writer's is a fifth)
MIGRATION_LOCK = 0x65646765_6C6F6F70  # pg_advisory_lock's key: "edgeloop"
BUSY_TIMEOUT_S = 30
# SQLite's page cache of the writing connection (its default is 2 MiB): the pages each batch's inserts touch
# (the table's end, and each device's place in the indexes) stay in it, ~10 % less writer time per prediction.
WRITER_CACHE_KIB = 64 * 1024
# A new SQLite file's page size (SQLite's default is 4 KiB): a batch's commit writes, and its checkpoint copies,
# a quarter as many pages, and its inserts split fewer: ~10 % less writer time per prediction.
PAGE_SIZE = 16 * 1024
# Pages the WAL grows by before the writer copies them back into the database file (SQLite's default is 1,000): a
# checkpoint fsyncs the file and rewrites each page once however often the batches since the last one changed it,
# so four times fewer of them (64 MiB of WAL) took the writer alone from 9-17 µs to about 8 µs of wall time per
# prediction at a million rows; through the whole ingest the difference stayed within the runs' scatter.
WAL_CHECKPOINT_PAGES = 4096


class Database:
    """SQL is written once with `?` placeholders; `MAX2(a, b)` and `MIN2(a, b)` are the larger and the
    smaller of two values."""

    def __init__(self, url: str, readers: int = READERS) -> None:
        self.url = url
        scheme = urlsplit(url).scheme
        self._lock = threading.RLock()  # one writing connection per Database; threads take turns
        if scheme == "sqlite":
            path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else ""
            if not path:
                raise StoreError(f"SQLite URLs look like sqlite:///path/to/file.db, not {url!r}")
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.dialect = "sqlite"
            self._path = path
            self._begin = "BEGIN IMMEDIATE"  # the write lock up front: another instance's writer is waited for
            self._conn = self._connect_sqlite()
            self._conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # a new file's; an existing one keeps its own
            _use_wal(self._conn)
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
            self._conn.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        elif scheme in ("postgresql", "postgres"):
            self.dialect = "postgresql"
            self._begin = "BEGIN"
            self._conn = self._connect_postgres()
        else:
            raise StoreError(f"database URL must be sqlite:///… or postgresql://…, not {scheme}://")
        self._readers = Pool(self._connect_reader, readers)
        self.migrate()

    def _connect_sqlite(self) -> sqlite3.Connection:
        return sqlite3.connect(self._path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S)

    def _connect_postgres(self):
        import psycopg

        try:
            return psycopg.connect(self.url, autocommit=True)
        except psycopg.OperationalError as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc

    def _connect_reader(self):
        """A connection that only reads: SQLite in WAL mode reads the last commit while the writer writes."""
        if self.dialect == "sqlite":
            conn = self._connect_sqlite()
            conn.execute("PRAGMA query_only = ON")
        else:
            conn = self._connect_postgres()
            conn.execute("SET default_transaction_read_only = on")
        return conn

    def transient(self, exc: BaseException) -> bool:
        """An error worth retrying (a server restart, a busy or full disk), not one in the data."""
        if isinstance(exc, StoreError):
            return True
        if self.dialect == "sqlite":
            return isinstance(exc, sqlite3.OperationalError)
        import psycopg

        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)

    def reconnect(self) -> None:
        """After a transient error: PostgreSQL gets a new connection (SQLite's file needs none), and the
        readers' idle ones go, as likely broken as the writer's."""
        if self.dialect == "postgresql":
            self._readers.discard_idle()
            with self._lock:
                try:
                    self._conn.close()
                finally:
                    self._conn = self._connect_postgres()
                    log.info("reconnected to PostgreSQL")

    def _sql(self, sql: str) -> str:
        if self.dialect == "postgresql":
            return sql.replace("?", "%s").replace("MAX2(", "GREATEST(").replace("MIN2(", "LEAST(")
        return sql.replace("MAX2(", "MAX(").replace("MIN2(", "MIN(")

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """A cursor inside BEGIN … COMMIT (ROLLBACK on error)."""
        with self._lock:
            cursor = self._conn.cursor()
            cursor.execute(self._begin)
            try:
                yield Cursor(cursor, self._sql, self.dialect)
            except BaseException:
                try:
                    cursor.execute("ROLLBACK")
                except Exception:  # a broken connection: the original error is the one to report
                    log.debug("rollback failed", exc_info=True)
                raise
            cursor.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[Cursor]:
        """A cursor on a reader connection of the pool, never the writer's. A read transaction it
        begins (BEGIN) and leaves open ends here, so the next reader starts from the last commit."""
        with self._readers.connection() as conn:
            yield Cursor(conn.cursor(), self._sql, self.dialect)
            if in_transaction(conn):
                conn.execute("ROLLBACK")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Rows of one read, on a reader connection; a connection that broke while idle in the pool
        (a PostgreSQL restart) is replaced and the read tried once more."""
        try:
            return self._read(sql, params)
        except Exception as exc:
            if not self.transient(exc):
                raise
            log.info("a reader connection failed (%r): reading again on a new one", exc)
            self._readers.discard_idle()
            return self._read(sql, params)

    def _read(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        with self.reading() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One writing statement in its own transaction; returns the rows it touched."""
        with self.transaction() as cur:
            return cur.execute(sql, params)

    def migrate(self) -> None:
        """Apply the migrations this database has not seen, each in its own transaction that reads the
        version again first: of several instances starting at once, one applies each migration."""
        with self._lock, self._migrating():
            with self.transaction() as cur:
                cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            for version, migration in enumerate(MIGRATIONS, start=1):
                with self.transaction() as cur:
                    cur.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version")
                    if cur.fetchall()[0][0] >= version:
                        continue
                    for statement in migration if isinstance(migration, list) else migration[self.dialect]:
                        cur.execute(statement)
                    cur.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                log.info("database migrated to schema version %d", version)

    @contextmanager
    def _migrating(self) -> Iterator[None]:
        """PostgreSQL: the instances' migrations one at a time (a concurrent CREATE TABLE IF NOT EXISTS
        fails there); the lock goes with the session if this process dies. SQLite's BEGIN IMMEDIATE
        already serializes them."""
        if self.dialect != "postgresql":
            yield
            return
        self._conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            yield
        finally:
            self._conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))

    def reachable(self) -> bool:
        """Whether the store answers a trivial query now: what readiness asks, cheap at any size."""
        try:
            return self.query("SELECT 1") == [(1,)]
        except Exception:
            log.warning("the store does not answer", exc_info=True)
            return False

    def close(self) -> None:
        self._readers.close()
        with self._lock:
            self._conn.close()


def _use_wal(conn: sqlite3.Connection) -> None:
    """WAL, where readers and the writer do not block each other. Switching a new file to it needs the file
    to itself and, unlike a write, does not wait for another instance opening it at the same moment: tried
    again until the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def connect(url: str) -> Database:
    return Database(url)
