"""Storage: SQLite (embedded, the default) or PostgreSQL (for fleets), chosen by URL."""

from cloud.store.db import Database, StoreError, connect

__all__ = ["Database", "StoreError", "connect"]
