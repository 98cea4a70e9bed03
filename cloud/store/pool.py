"""A small pool of database connections, for the readers beside the writer's own connection
(psycopg_pool is not a dependency, and SQLite needs no more than this)."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)


class StoreError(Exception):
    """A database URL that cannot be used, or a database that cannot be reached."""


class Pool:
    """Up to `size` connections made by `connect` on demand, each lent to one caller at a time (a caller
    beyond waits for one to come back); one that saw an error is closed, not lent again."""

    def __init__(self, connect: Callable[[], Any], size: int) -> None:
        if size < 1:
            raise StoreError(f"a pool needs at least one connection, not {size}")
        self._connect = connect
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[Any] = []
        self._guard = threading.Lock()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[Any]:
        with self._slots:
            with self._guard:
                if self._closed:
                    raise StoreError("the store is closed")
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = self._connect()
            try:
                yield conn
            except BaseException:
                _close(conn)
                raise
            with self._guard:
                if self._closed:
                    _close(conn)
                else:
                    self._idle.append(conn)

    def discard_idle(self) -> None:
        with self._guard:
            idle, self._idle = self._idle, []
        for conn in idle:
            _close(conn)

    def close(self) -> None:
        """Idle connections close now, lent ones when they come back."""
        with self._guard:
            self._closed = True
        self.discard_idle()


def in_transaction(conn: Any) -> bool:
    if isinstance(conn, sqlite3.Connection):
        return conn.in_transaction
    from psycopg.pq import TransactionStatus

    return conn.info.transaction_status != TransactionStatus.IDLE


def _close(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # already broken: nothing more to release
        log.debug("closing a connection failed", exc_info=True)
