"""The schema, as an ordered list of migrations: a database at version N runs N+1… on start.
Append new migrations; never edit one that has shipped."""

MIGRATIONS: list[list[str]] = [
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
]
