"""The SQLite usage store: the ledger and the spend limits in one file beside the key store.

The schema is versioned: ``schema_version`` holds the version the file is at, and
:data:`MIGRATIONS` lists the steps from each version to the next. Opening a file applies the
missing steps in one ``BEGIN IMMEDIATE`` transaction (so two processes starting at once upgrade
it once); a file newer than this akgate is refused rather than written wrongly.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

from akgate._sqlite import connect
from akgate.auth._sqlite import HOME_ENV

from ._sqlstore import SQLUsageStore, apply_migrations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SQLiteUsageStore", "default_usage_path", "migrate"]

T = TypeVar("T")

#: Step ``i`` upgrades a file from version ``i`` to ``i + 1``.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE usage_records (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts REAL NOT NULL,
            request_id TEXT NOT NULL,
            key_id TEXT NOT NULL,
            workspace_id TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            model TEXT NOT NULL,
            provider TEXT,
            provider_model TEXT,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cached_tokens INTEGER NOT NULL DEFAULT 0,
            reasoning_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            cache_savings_usd REAL NOT NULL DEFAULT 0,
            ttft_ms REAL,
            duration_ms REAL NOT NULL DEFAULT 0,
            status INTEGER NOT NULL,
            error_code TEXT,
            stream INTEGER NOT NULL DEFAULT 0,
            client_disconnected INTEGER NOT NULL DEFAULT 0,
            estimated INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX usage_records_ts ON usage_records (ts)",
        "CREATE INDEX usage_records_key_ts ON usage_records (key_id, ts)",
        """CREATE TABLE spend_limits (
            scope TEXT NOT NULL,
            scope_id TEXT NOT NULL,
            daily_usd REAL,
            weekly_usd REAL,
            monthly_usd REAL,
            enforce INTEGER NOT NULL DEFAULT 1,
            tpm INTEGER,
            updated_at REAL NOT NULL,
            PRIMARY KEY (scope, scope_id)
        )""",
    ),
)
SCHEMA_VERSION: Final = len(MIGRATIONS)


def default_usage_path() -> Path:
    """``$AKGATE_HOME/usage.sqlite3``, by default ``~/.akgate/usage.sqlite3``."""
    home = os.environ.get(HOME_ENV)
    return (Path(home) if home else Path.home() / ".akgate") / "usage.sqlite3"


def migrate(conn: sqlite3.Connection, steps: Sequence[Sequence[str]] = MIGRATIONS) -> int:
    """Bring ``conn``'s file to the newest schema; returns the version it was at."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = apply_migrations(conn, steps, "?")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


class SQLiteUsageStore(SQLUsageStore):
    """Usage records and spend limits in a SQLite file (WAL mode; several processes on one
    host may share it). Default: ``$AKGATE_HOME/usage.sqlite3``."""

    placeholder = "?"
    day_sql = "strftime('%Y-%m-%d', ts, 'unixepoch')"
    errors = (sqlite3.Error, OSError)
    name = "SQLite"

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        cache_ttl: float = 2.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(cache_ttl=cache_ttl, clock=clock)
        self.path = Path(path) if path is not None else default_usage_path()
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"SQLiteUsageStore({str(self.path)!r})"

    def _describe(self) -> str:
        return repr(str(self.path))

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return connect(
            self.path,
            timeout=self.timeout,
            pragmas=("journal_mode = WAL", "synchronous = NORMAL"),
            setup=migrate,
        )

    def _transaction(self, conn: Any, work: Callable[[Any], T]) -> T:
        conn.execute("BEGIN")
        try:
            result = work(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result
