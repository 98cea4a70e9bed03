"""PostgreSQL's day partitions of `predictions` (schema migration 4): made ahead of the days they hold,
dropped whole once every row they can hold is older than the retention's cutoff, so expiring a day
costs a file's deletion, not a delete of its rows. Each change takes its locks for a bounded time
(`LOCK_TIMEOUT`): waiting behind another instance's long transaction would queue every insert behind
it, so it gives up and the next pass tries again."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from cloud.store.db import Database

log = logging.getLogger(__name__)

DAY_S = 86400
LOCK_TIMEOUT = "500ms"
_PREFIX = "predictions_"
_DEFAULT = "predictions_default"
_PARTITIONS = """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'predictions'::regclass"""


def day(ts: float) -> int:
    """The UTC day `ts` falls on, in days since the epoch: what names a partition."""
    return int(ts // DAY_S)


def create(db: Database, first_day: int, last_day: int) -> int:
    """Make the partitions of the days first_day to last_day that are missing (rows of theirs in the
    default partition move in); returns how many were made."""
    made = 0
    for d in range(first_day, last_day + 1):
        with db.transaction() as cur:
            cur.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            cur.execute("SELECT edgeloop_predictions_day(?)", (d,))
            made += bool(cur.fetchall()[0][0])
    return made


def names(db: Database) -> list[str]:
    """The day partitions, oldest first (the default partition aside)."""
    return sorted(name for (name,) in db.query(_PARTITIONS) if name != _DEFAULT)


def drop_before(db: Database, before: float) -> list[str]:
    """Drop the day partitions that end at or before `before`, and delete the default partition's rows
    captured before it; returns the partitions dropped."""
    dropped = []
    for name in names(db):
        start = datetime.strptime(name.removeprefix(_PREFIX), "%Y%m%d").replace(tzinfo=timezone.utc).timestamp()
        if start + DAY_S > before:
            break
        with db.transaction() as cur:
            cur.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            cur.execute(f'DROP TABLE IF EXISTS "{name}"')  # another instance's pass may have dropped it
        dropped.append(name)
        log.info("dropped partition %s: its predictions were older than the retention", name)
    db.execute(f"DELETE FROM {_DEFAULT} WHERE ts < ?", (before,))
    return dropped
