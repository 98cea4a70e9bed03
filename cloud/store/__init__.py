"""Storage: SQLite (embedded, the default) or PostgreSQL (for fleets), chosen by URL. Every SQL
statement of the cloud is in this package, a module per table (devices, predictions, rollups,
samples, models, jobs) and one for the windowed reads (windows); they return named rows or plain values."""

from cloud.store.cursor import Cursor
from cloud.store.db import Database, StoreError, connect

__all__ = ["Cursor", "Database", "StoreError", "connect"]
