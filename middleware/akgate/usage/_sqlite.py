"""The SQLite usage store: the ledger and the spend limits in one file beside the key store.

The schema is versioned: ``schema_version`` holds the version the file is at, and
:data:`MIGRATIONS` lists the steps from each version to the next. Opening a file applies the
missing steps, each in one ``BEGIN IMMEDIATE`` transaction (so two processes starting at once
upgrade it once); a file newer than this akgate is refused rather than written wrongly.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio.to_thread

from akgate.auth._cache import TTLCache
from akgate.auth._sqlite import HOME_ENV

from ._ledger import GroupBy
from ._limits import Budget, Limits, LimitScope
from ._periods import Period
from ._record import RECORD_COLUMNS, UsageRecord

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SQLiteUsageStore",
    "UsageStoreError",
    "default_usage_path",
]

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

_INSERT: Final = (
    f"INSERT INTO usage_records ({', '.join(RECORD_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(RECORD_COLUMNS))})"
)
_GROUP_SQL: Final[dict[str, str]] = {
    "key": "key_id",
    "model": "model",
    "day": "strftime('%Y-%m-%d', ts, 'unixepoch')",
}
_BOOL_COLUMNS: Final = frozenset({"stream", "client_disconnected", "estimated"})


class UsageStoreError(Exception):
    """The usage store cannot be used (unreachable, or a schema newer than this akgate)."""


def default_usage_path() -> Path:
    """``$AKGATE_HOME/usage.sqlite3``, by default ``~/.akgate/usage.sqlite3``."""
    home = os.environ.get(HOME_ENV)
    return (Path(home) if home else Path.home() / ".akgate") / "usage.sqlite3"


def migrate(conn: sqlite3.Connection, steps: Sequence[Sequence[str]] = MIGRATIONS) -> int:
    """Bring ``conn``'s file to the newest schema; returns the version it was at."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        found = 0 if row is None else int(row[0])
        if found > len(steps):
            raise UsageStoreError(
                f"the usage database is at schema version {found}, newer than this akgate "
                f"({len(steps)}): upgrade akgate"
            )
        for step in steps[found:]:
            for statement in step:
                conn.execute(statement)
        if row is None:
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (len(steps),))
        else:
            conn.execute("UPDATE schema_version SET version = ?", (len(steps),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


def _row_values(record: UsageRecord) -> tuple[Any, ...]:
    return tuple(getattr(record, column) for column in RECORD_COLUMNS)


def _record_of(row: Sequence[Any]) -> UsageRecord:
    data = dict(zip(RECORD_COLUMNS, row, strict=True))
    for column in _BOOL_COLUMNS:
        data[column] = bool(data[column])
    return UsageRecord(**data)


class SQLiteUsageStore:
    """Usage records and spend limits in a SQLite file (WAL mode; several processes may share
    it). A :class:`~akgate.usage.LedgerBackend` and a :class:`~akgate.usage.LimitStore`.

    Limit lookups are cached for ``cache_ttl`` seconds, so a hot key costs no database access
    and a change made with ``akgate keys update`` applies within ``cache_ttl``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        cache_ttl: float = 2.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path) if path is not None else default_usage_path()
        self.timeout = timeout
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._cache: TTLCache[Limits | None] = TTLCache(maxsize=10_000, ttl=cache_ttl, clock=clock)

    def __repr__(self) -> str:
        return f"SQLiteUsageStore({str(self.path)!r})"

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, check_same_thread=False, isolation_level=None
            )
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                migrate(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _locked(self, func: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            try:
                return func(self._connect())
            except (sqlite3.Error, OSError) as exc:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                raise UsageStoreError(
                    f"SQLite usage store {str(self.path)!r} is unavailable ({type(exc).__name__})"
                ) from exc

    # -- LedgerBackend (called from the ledger's writer thread) ------------------------------
    def write(self, records: Sequence[UsageRecord]) -> None:
        rows = [_row_values(r) for r in records]

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN")
            try:
                conn.executemany(_INSERT, rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        self._locked(insert)

    def summarize(self, since: float, until: float | None, by: GroupBy) -> list[dict[str, Any]]:
        group = _GROUP_SQL[by]
        sql = (
            f"SELECT {group} AS g, COUNT(*), SUM(error_code IS NOT NULL), SUM(input_tokens), "
            "SUM(output_tokens), SUM(cached_tokens), SUM(reasoning_tokens), SUM(cost_usd) "
            "FROM usage_records WHERE ts >= ? AND ts < ? GROUP BY g ORDER BY g"
        )
        end = until if until is not None else float("inf")

        def query(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            return [
                {
                    "group": row[0],
                    "requests": row[1],
                    "errors": row[2],
                    "input_tokens": row[3],
                    "output_tokens": row[4],
                    "cached_tokens": row[5],
                    "reasoning_tokens": row[6],
                    "cost_usd": row[7],
                }
                for row in conn.execute(sql, (since, end)).fetchall()
            ]

        return self._locked(query)

    def records(self, since: float = 0.0) -> list[UsageRecord]:
        """Every record since ``since``, oldest first (exports and tests)."""
        sql = f"SELECT {', '.join(RECORD_COLUMNS)} FROM usage_records WHERE ts >= ? ORDER BY id"
        return self._locked(lambda conn: [_record_of(r) for r in conn.execute(sql, (since,))])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- LimitStore ---------------------------------------------------------------------------
    def get_limits_sync(self, scope: LimitScope, scope_id: str) -> Limits | None:
        sql = (
            "SELECT daily_usd, weekly_usd, monthly_usd, enforce, tpm FROM spend_limits "
            "WHERE scope = ? AND scope_id = ?"
        )
        row = self._locked(lambda conn: conn.execute(sql, (scope, scope_id)).fetchone())
        if row is None:
            return None
        daily, weekly, monthly, enforce, tpm = row
        budgets: dict[Period, Budget] = {}
        for period, usd in (("daily", daily), ("weekly", weekly), ("monthly", monthly)):
            if usd is not None:
                budgets[period] = Budget(usd, bool(enforce))  # type: ignore[index]
        return Limits(budgets, tpm)

    def set_limits_sync(self, scope: LimitScope, scope_id: str, limits: Limits) -> None:
        budgets = limits.budgets
        enforce = all(b.enforce for b in budgets.values())
        values = (
            scope,
            scope_id,
            *(
                budgets[p].limit_usd if p in budgets else None
                for p in ("daily", "weekly", "monthly")
            ),
            int(enforce),
            limits.tpm,
            time.time(),
        )
        sql = (
            "INSERT INTO spend_limits (scope, scope_id, daily_usd, weekly_usd, monthly_usd, "
            "enforce, tpm, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (scope, scope_id) DO UPDATE SET daily_usd = excluded.daily_usd, "
            "weekly_usd = excluded.weekly_usd, monthly_usd = excluded.monthly_usd, "
            "enforce = excluded.enforce, tpm = excluded.tpm, updated_at = excluded.updated_at"
        )
        self._locked(lambda conn: conn.execute(sql, values))
        self._cache.discard(f"{scope}:{scope_id}")

    async def get_limits(self, scope: LimitScope, scope_id: str) -> Limits | None:
        cache_key = f"{scope}:{scope_id}"
        hit, limits = self._cache.get(cache_key)
        if hit:
            return limits
        limits = await anyio.to_thread.run_sync(self.get_limits_sync, scope, scope_id)
        self._cache.set(cache_key, limits)
        return limits

    async def set_limits(self, scope: LimitScope, scope_id: str, limits: Limits) -> None:
        await anyio.to_thread.run_sync(self.set_limits_sync, scope, scope_id, limits)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.close)
