"""A promoted model version written straight into the store's registry, with the labels it was trained on."""

import json
import time


def register(db, version: str, label_counts: dict[str, int], name: str = "flowers") -> None:
    with db.transaction() as cur:
        cur.execute(
            """INSERT INTO models (name, version, state, created, sha256, metrics, label_counts)
               VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (name, version, "promoted", time.time(), "0" * 64, "{}", json.dumps(label_counts)),
        )
