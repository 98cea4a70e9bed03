"""The schema, as an ordered list of migrations: a database at version N runs N+1… on start.
Append new migrations; never edit one that has shipped.

Migration 2 is the closed loop: labels on samples, device groups, the model registry (`models`:
state is candidate, promoted, rejected or retired; `label_counts` is the training images per
label, JSON; `gate` the comparison that decided it; `rollout_groups` the device groups a promoted
version is announced to, JSON, NULL for the whole fleet), the exact training images of each version
(`model_images`), and training jobs (`reasons` one per line; `active` is 1 while queued or
running and NULL after, so the unique (model, active) lets one job per model be active at a time)."""

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
]
