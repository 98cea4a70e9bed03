"""The schema, as an ordered list of migrations: a database at version N runs N+1… on start.
Append new migrations; never edit one that has shipped.

Migration 2 is the closed loop: labels on samples, device groups, the model registry (`models`:
state is candidate, promoted, rejected or retired; `label_counts` is the training images per
label, JSON; `gate` the comparison that decided it; `rollout_groups` the device groups a promoted
version is announced to, JSON, NULL for the whole fleet), the exact training images of each version
(`model_images`), and training jobs (`reasons` one per line; `active` is 1 while queued or
running and NULL after, so the unique (model, active) lets one job per model be active at a time).

Migration 3 makes every read cost the fleet's size, not history's: per-device counters on `devices`
(predictions stored, lowest and highest seq, duplicates received) and `prediction_rollups`, the
predictions per device, bucket of `width` seconds (60 and 10: `bucket` is `floor(ts / width)`), model
version and label, both kept by the writer in the transaction that stores the rows, and filled here
once from the rows already stored (duplicates received before it were never kept: they start at 0).

Migration 4 is several cameras per device: predictions and samples name their `camera` (NULL: the device
has one and names none); the rollups are keyed by camera too ('' for none: a key column cannot be NULL),
rebuilt from the old ones (a copy of the rollups, not a scan of the rows); `cameras` is a row per named
camera of a device: its predictions stored and when the last of them arrived, kept by the writer like the
devices' counters, and its figures from its device's latest telemetry (fps, frames dropped, reopens).

Migration 5 lets old raw predictions go whole on PostgreSQL: `predictions` becomes partitioned by range
of `ts`, a partition per UTC day (`predictions_YYYYMMDD`) and a default one for whatever falls outside
them (a device's clock far ahead); the table is renamed, its like created partitioned, the rows copied
into partitions made for the days they fall on (the last 1000 days; older ones to the default), and
the old table dropped. A partitioned table's unique key must hold the partition key: it is (device_id,
seq, ts), the same for an honest device, whose resent prediction carries the capture time of the first
copy. `edgeloop_predictions_day(day)` creates day `day`'s partition (days since the epoch) if it is
missing, moving its rows out of the default one; the retention task calls it ahead of time. It copies
whatever columns the table has and needs none but `ts`. SQLite keeps its table and gains an index
on `ts` alone: its old rows go in batches in capture order, which is nearly the order they were
stored in, so a batch rewrites a few neighbouring pages (device by device, through the (device_id, ts)
index, every batch rewrote pages shared with every other device: 2.5 times slower).

Migration 6 gives SQLite PostgreSQL's key, a prediction stored once per (device_id, seq, ts), in one index
ordered (device_id, ts, seq) that the windows read as the (device_id, ts) index: the primary key on
(device_id, seq) and the (device_id, ts) index were two B-trees that every stored row went into, and one
fewer takes a quarter off the writer's time per prediction. SQLite cannot change a table's key, so the table
is rebuilt (its rows copied in their order: a minute or so per ten million). PostgreSQL is unchanged."""

LOW = 0.5  # prediction_rollups.low counts the predictions scored under this: the windows' default threshold

WIDTHS = (60, 10)  # the rollups' buckets, in seconds: minutes for long windows, tens for a window's first minute


def _bucket(width: int) -> str:
    """floor(ts / width) exactly (the largest b with b * width <= ts), as Python's `ts // width`: CAST
    truncates in SQLite and rounds in PostgreSQL, and the division itself may round up to the next integer."""
    return f"CAST(ts / {width} AS BIGINT) - CASE WHEN CAST(ts / {width} AS BIGINT) * {width} > ts THEN 1 ELSE 0 END"


# Instances take turns (an advisory lock); the default partition is locked against inserts while its rows of
# the day move out (a row inserted in between would fail the ATTACH); ATTACH itself leaves inserts into the other
# partitions running.
_DAY_PARTITION = """CREATE FUNCTION edgeloop_predictions_day(day BIGINT) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    part TEXT := 'predictions_' || to_char(to_timestamp(day * 86400) AT TIME ZONE 'UTC', 'YYYYMMDD');
    low TEXT := (day * 86400)::TEXT;
    high TEXT := ((day + 1) * 86400)::TEXT;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('edgeloop_predictions_day'));
    IF to_regclass(part) IS NOT NULL THEN
        RETURN FALSE;
    END IF;
    LOCK TABLE predictions_default IN SHARE ROW EXCLUSIVE MODE;
    EXECUTE 'CREATE TABLE ' || quote_ident(part) || ' (LIKE predictions INCLUDING DEFAULTS)';
    EXECUTE 'INSERT INTO ' || quote_ident(part) || ' SELECT * FROM predictions_default WHERE ts >= '
        || low || ' AND ts < ' || high;
    EXECUTE 'DELETE FROM predictions_default WHERE ts >= ' || low || ' AND ts < ' || high;
    EXECUTE 'ALTER TABLE predictions ATTACH PARTITION ' || quote_ident(part) || ' FOR VALUES FROM ('
        || low || ') TO (' || high || ')';
    RETURN TRUE;
END $$"""

# Statements for both dialects, or for each (keyed by Database.dialect).
Migration = list[str] | dict[str, list[str]]

_PREDICTION_COLUMNS = (
    "device_id, seq, ts, received, model_name, model_version, label, score, top_k, infer_ms, total_ms, camera"
)


def _rollup_table(name: str, camera: str) -> str:
    """The rollups' table: migration 3 made it, migration 4 again with `camera` in its key."""
    key = (
        "device_id, width, bucket, camera, model_name, model_version, label"
        if camera
        else ("device_id, width, bucket, model_name, model_version, label")
    )
    return f"""CREATE TABLE {name} (
            device_id TEXT NOT NULL,
            width INTEGER NOT NULL,
            bucket BIGINT NOT NULL,
            {camera}
            model_name TEXT NOT NULL,
            model_version TEXT NOT NULL,
            label TEXT NOT NULL,
            predictions BIGINT NOT NULL,
            score_sum DOUBLE PRECISION NOT NULL,
            low BIGINT NOT NULL,
            first_ts DOUBLE PRECISION NOT NULL,
            last_ts DOUBLE PRECISION NOT NULL,
            infer_ms_sum DOUBLE PRECISION NOT NULL,
            total_ms_sum DOUBLE PRECISION NOT NULL,
            PRIMARY KEY ({key})
        )"""


MIGRATIONS: list[Migration] = [
    [
        """CREATE TABLE predictions (
            device_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            ts DOUBLE PRECISION NOT NULL,
            received DOUBLE PRECISION NOT NULL,
            model_name TEXT NOT NULL,
            model_version TEXT NOT NULL,
            label TEXT NOT NULL,
            score DOUBLE PRECISION NOT NULL,
            top_k TEXT NOT NULL,
            infer_ms DOUBLE PRECISION NOT NULL,
            total_ms DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (device_id, seq)
        )""",
        "CREATE INDEX predictions_by_time ON predictions (device_id, ts)",
        """CREATE TABLE devices (
            device_id TEXT PRIMARY KEY,
            state TEXT NOT NULL DEFAULT 'unknown',
            last_seen DOUBLE PRECISION NOT NULL,
            model_name TEXT,
            model_version TEXT,
            backend TEXT,
            fps DOUBLE PRECISION,
            telemetry TEXT,
            message TEXT
        )""",
        """CREATE TABLE samples (
            id TEXT PRIMARY KEY,
            device_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            ts DOUBLE PRECISION NOT NULL,
            received DOUBLE PRECISION NOT NULL,
            model_name TEXT NOT NULL,
            model_version TEXT NOT NULL,
            predicted TEXT NOT NULL,
            score DOUBLE PRECISION NOT NULL,
            reason TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'unlabelled',
            label TEXT,
            bytes BIGINT NOT NULL
        )""",
        "CREATE INDEX samples_by_status ON samples (status, received)",
    ],
    [
        "ALTER TABLE samples ADD COLUMN labelled_at DOUBLE PRECISION",
        "ALTER TABLE samples ADD COLUMN dataset_path TEXT",
        "ALTER TABLE devices ADD COLUMN device_group TEXT",
        """CREATE TABLE models (
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            state TEXT NOT NULL,
            created DOUBLE PRECISION NOT NULL,
            parent TEXT,
            trigger TEXT,
            job_id TEXT,
            sha256 TEXT NOT NULL,
            metrics TEXT NOT NULL,
            label_counts TEXT NOT NULL,
            gate TEXT,
            promoted_at DOUBLE PRECISION,
            rollout_groups TEXT,
            PRIMARY KEY (name, version)
        )""",
        """CREATE TABLE model_images (
            name TEXT NOT NULL,
            version TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            label TEXT NOT NULL,
            split TEXT NOT NULL,
            PRIMARY KEY (name, version, sha256)
        )""",
        """CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            active INTEGER,
            state TEXT NOT NULL,
            reasons TEXT NOT NULL,
            created DOUBLE PRECISION NOT NULL,
            started DOUBLE PRECISION,
            finished DOUBLE PRECISION,
            version TEXT,
            message TEXT,
            UNIQUE (model, active)
        )""",
    ],
    [
        "ALTER TABLE devices ADD COLUMN predictions BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE devices ADD COLUMN first_seq BIGINT",
        "ALTER TABLE devices ADD COLUMN last_seq BIGINT",
        "ALTER TABLE devices ADD COLUMN duplicates BIGINT NOT NULL DEFAULT 0",
        """UPDATE devices SET
            predictions = (SELECT COUNT(*) FROM predictions p WHERE p.device_id = devices.device_id),
            first_seq = (SELECT MIN(seq) FROM predictions p WHERE p.device_id = devices.device_id),
            last_seq = (SELECT MAX(seq) FROM predictions p WHERE p.device_id = devices.device_id)""",
        _rollup_table("prediction_rollups", ""),
        *(
            f"""INSERT INTO prediction_rollups (device_id, width, bucket, model_name, model_version, label,
            predictions, score_sum, low, first_ts, last_ts, infer_ms_sum, total_ms_sum)
            SELECT device_id, {width}, {_bucket(width)} AS b, model_name, model_version, label,
            COUNT(*), SUM(score), SUM(CASE WHEN score < {LOW} THEN 1 ELSE 0 END), MIN(ts), MAX(ts),
            SUM(infer_ms), SUM(total_ms)
            FROM predictions GROUP BY device_id, b, model_name, model_version, label"""
            for width in WIDTHS
        ),
    ],
    [
        "ALTER TABLE predictions ADD COLUMN camera TEXT",
        "ALTER TABLE samples ADD COLUMN camera TEXT",
        """CREATE TABLE cameras (
            device_id TEXT NOT NULL,
            camera TEXT NOT NULL,
            predictions BIGINT NOT NULL DEFAULT 0,
            last_seen DOUBLE PRECISION,
            fps DOUBLE PRECISION,
            dropped DOUBLE PRECISION,
            reopens DOUBLE PRECISION,
            PRIMARY KEY (device_id, camera)
        )""",
        _rollup_table("prediction_rollups_by_camera", "camera TEXT NOT NULL,"),
        """INSERT INTO prediction_rollups_by_camera (device_id, width, bucket, camera, model_name, model_version, label,
            predictions, score_sum, low, first_ts, last_ts, infer_ms_sum, total_ms_sum)
            SELECT device_id, width, bucket, '', model_name, model_version, label, predictions, score_sum, low,
            first_ts, last_ts, infer_ms_sum, total_ms_sum FROM prediction_rollups""",
        "DROP TABLE prediction_rollups",
        "ALTER TABLE prediction_rollups_by_camera RENAME TO prediction_rollups",
    ],
    {
        "sqlite": ["CREATE INDEX predictions_by_capture ON predictions (ts)"],
        "postgresql": [
            "ALTER TABLE predictions RENAME TO predictions_unpartitioned",
            "CREATE TABLE predictions (LIKE predictions_unpartitioned INCLUDING DEFAULTS) PARTITION BY RANGE (ts)",
            "CREATE TABLE predictions_default PARTITION OF predictions DEFAULT",
            _DAY_PARTITION,
            """SELECT edgeloop_predictions_day(day) FROM (
                SELECT DISTINCT FLOOR(ts / 86400)::BIGINT AS day FROM predictions_unpartitioned
                WHERE ts >= EXTRACT(EPOCH FROM now()) - 1000 * 86400 AND ts < EXTRACT(EPOCH FROM now()) + 86400
                UNION SELECT FLOOR(EXTRACT(EPOCH FROM now()) / 86400)::BIGINT) days ORDER BY day""",
            "INSERT INTO predictions SELECT * FROM predictions_unpartitioned",
            "DROP TABLE predictions_unpartitioned",
            "ALTER TABLE predictions ADD PRIMARY KEY (device_id, seq, ts)",
            "CREATE INDEX predictions_by_time ON predictions (device_id, ts)",
        ],
    },
    {
        "sqlite": [
            """CREATE TABLE predictions_keyed_by_time (
                device_id TEXT NOT NULL,
                seq BIGINT NOT NULL,
                ts DOUBLE PRECISION NOT NULL,
                received DOUBLE PRECISION NOT NULL,
                model_name TEXT NOT NULL,
                model_version TEXT NOT NULL,
                label TEXT NOT NULL,
                score DOUBLE PRECISION NOT NULL,
                top_k TEXT NOT NULL,
                infer_ms DOUBLE PRECISION NOT NULL,
                total_ms DOUBLE PRECISION NOT NULL,
                camera TEXT
            )""",
            f"INSERT INTO predictions_keyed_by_time ({_PREDICTION_COLUMNS}) "
            f"SELECT {_PREDICTION_COLUMNS} FROM predictions ORDER BY rowid",
            "DROP TABLE predictions",
            "ALTER TABLE predictions_keyed_by_time RENAME TO predictions",
            "CREATE UNIQUE INDEX predictions_by_time ON predictions (device_id, ts, seq)",
        ],
        "postgresql": [],
    },
]
