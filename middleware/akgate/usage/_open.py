"""Open the usage store a setting names: a PostgreSQL URL, or a SQLite file path."""

from __future__ import annotations

import os

from ._postgres import PostgresUsageStore, is_postgres_url
from ._sqlite import SQLiteUsageStore
from ._sqlstore import SQLUsageStore

__all__ = ["open_usage_store"]


def open_usage_store(target: str | os.PathLike[str] | None = None) -> SQLUsageStore:
    """``postgresql://...`` -> :class:`PostgresUsageStore`; a path (default
    ``$AKGATE_HOME/usage.sqlite3``) -> :class:`SQLiteUsageStore`."""
    if is_postgres_url(target):
        return PostgresUsageStore(str(target))
    return SQLiteUsageStore(target)
