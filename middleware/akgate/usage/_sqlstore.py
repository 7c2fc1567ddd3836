"""What the SQLite and PostgreSQL usage stores share: records, summaries, limits, caching.

Each subclass names its dialect (placeholder, the SQL of a UTC day, how to open a connection and
run a transaction); one connection per store is used under a lock, from the ledger's writer
thread or from a worker thread (``anyio.to_thread``), never on the event loop.
"""

from __future__ import annotations

import operator
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, ClassVar, Final, TypeVar

import anyio
import anyio.to_thread

from akgate.auth._cache import TTLCache

from ._ledger import GroupBy
from ._limits import Budget, Limits, LimitScope
from ._periods import PERIODS, Period
from ._record import RECORD_COLUMNS, UsageRecord

__all__ = [
    "SUMMARY_COLUMNS",
    "Row",
    "SQLUsageStore",
    "Statement",
    "UsageStoreError",
    "plain_transaction",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
#: A row of column values, in the order of ``UsageRecord``'s fields.
Row = tuple[Any, ...]
#: One SQL statement and its parameters.
Statement = tuple[str, Sequence[Any]]
_BOOL_COLUMNS: Final = frozenset({"stream", "client_disconnected", "estimated"})
SUMMARY_COLUMNS: Final = (
    "group",
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost_usd",
)


#: A record's column values in one C call (the writer thread turns every record into a row).
_record_row: Final = operator.attrgetter(*RECORD_COLUMNS)


#: The dialects' own ``_transaction`` methods: BEGIN, the work, COMMIT (ROLLBACK on failure).
_PLAIN_TRANSACTIONS: Final[set[Callable[..., Any]]] = set()


def plain_transaction(method: F) -> F:
    """Mark a dialect's ``_transaction`` as only bracketing the work with BEGIN/COMMIT, which
    one statement on an autocommit connection does not need (``SQLUsageStore.write_rows``)."""
    _PLAIN_TRANSACTIONS.add(method)
    return method


class UsageStoreError(Exception):
    """The usage store cannot be used (unreachable, or a schema newer than this akgate)."""


def newer_schema(found: int, known: int) -> UsageStoreError:
    return UsageStoreError(
        f"the usage database is at schema version {found}, newer than this akgate ({known}): "
        "upgrade akgate"
    )


def apply_migrations(conn: Any, steps: Sequence[Sequence[str]], placeholder: str) -> int:
    """Run the schema steps the database lacks and record the new version, inside the caller's
    transaction (SQLite and PostgreSQL take their locks differently); returns the version it was
    at. ``placeholder`` is the driver's parameter mark (``?`` or ``%s``)."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    found = 0 if row is None else int(row[0])
    if found > len(steps):
        raise newer_schema(found, len(steps))
    for step in steps[found:]:
        for statement in step:
            conn.execute(statement)
    if row is None:
        conn.execute(f"INSERT INTO schema_version (version) VALUES ({placeholder})", (len(steps),))
    elif found != len(steps):
        conn.execute(f"UPDATE schema_version SET version = {placeholder}", (len(steps),))
    return found


class SQLUsageStore:
    """Base of the SQL usage stores: a :class:`~akgate.usage.LedgerBackend` (``write``,
    ``summarize``) and a :class:`~akgate.usage.LimitStore` (``get_limits``, ``set_limits``).

    Limit lookups are cached for ``cache_ttl`` seconds, so a hot key costs no database access
    and a change made with ``akgate keys update`` applies within ``cache_ttl``.
    """

    #: The parameter placeholder of the driver.
    placeholder: ClassVar[str] = "?"
    #: SQL of the UTC day (``YYYY-MM-DD``) of ``ts``.
    day_sql: ClassVar[str] = ""
    #: SQL of "this row is an error" as a number.
    error_sql: ClassVar[str] = "SUM(error_code IS NOT NULL)"
    #: Driver exceptions that mean the store is unavailable.
    errors: tuple[type[BaseException], ...] = (OSError,)
    name: ClassVar[str] = "SQL"

    def __init__(self, *, cache_ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._conn: Any = None
        self._lock = threading.Lock()
        self._cache: TTLCache[Limits | None] = TTLCache(maxsize=10_000, ttl=cache_ttl, clock=clock)
        #: The limits being read now (by cache key), and what their readers set once done.

    # -- what a dialect provides --------------------------------------------------------------
    def _open(self) -> Any:
        """A new connection with the schema migrated."""
        raise NotImplementedError

    def _describe(self) -> str:
        raise NotImplementedError

    def _transaction(self, conn: Any, work: Callable[[Any], T]) -> T:
        raise NotImplementedError

    def _insert_statements(self, conn: Any, rows: Sequence[Row]) -> list[Statement]:
        """The statements (SQL, parameters) that insert ``rows`` into ``usage_records``, in
        order: as few as the driver allows, one for a usual batch (see :meth:`write_rows`)."""
        raise NotImplementedError

    # -- plumbing -----------------------------------------------------------------------------
    def _locked(self, func: Callable[[Any], T]) -> T:
        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self._open()
                return func(self._conn)
            except self.errors as exc:
                self._drop()
                raise UsageStoreError(
                    f"{self.name} usage store {self._describe()} is unavailable "
                    f"({type(exc).__name__})"
                ) from exc

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except self.errors:  # pragma: no cover - closing a broken connection
                pass
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._drop()

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.close)

    # -- LedgerBackend ------------------------------------------------------------------------
    def write(self, records: Sequence[UsageRecord]) -> None:
        self.write_rows(list(map(_record_row, records)))

    def write_rows(self, rows: Sequence[Row]) -> None:
        """Store rows of column values (in the order of ``UsageRecord``'s fields) in one
        transaction: what :meth:`write` does with the records' fields.

        A batch is inserted by a few multi-row statements, not one statement per row
        (``executemany``): the ledger's writer thread gives up the GIL in every driver call and
        must win it back from a busy event loop each time, which costs the loop far more than
        the write itself (``docs/spend.md``, "Off the request path"). A batch that fits in one
        statement skips BEGIN/COMMIT: the connection is in autocommit mode, where one statement
        is its own transaction (all rows or none).
        """
        if not rows:
            return

        def insert(conn: Any) -> None:
            statements = self._insert_statements(conn, rows)
            if len(statements) == 1 and self._plain_transactions():
                sql, params = statements[0]
                conn.execute(sql, params)
                return

            def run(cursor: Any) -> None:
                for sql, params in statements:
                    cursor.execute(sql, params)

            self._transaction(conn, run)

        self._locked(insert)

    def _plain_transactions(self) -> bool:
        """False when ``_transaction`` is not the dialect's own (a subclass or a patched
        instance wraps it to add statements or checks): it then sees every batch."""
        return getattr(self._transaction, "__func__", None) in _PLAIN_TRANSACTIONS

    def _rows_writer(self) -> Callable[[Sequence[tuple[Any, ...]]], None] | None:
        """What the ledger's writer thread hands its queued rows to, skipping the records
        (:meth:`write_rows`); ``None`` when :meth:`write` is overridden (a subclass, a
        patched instance), whose ``write`` then gets every batch."""
        if getattr(self.write, "__func__", None) is not SQLUsageStore.write:
            return None
        return self.write_rows

    def summarize(self, since: float, until: float | None, by: GroupBy) -> list[dict[str, Any]]:
        group = {"key": "key_id", "model": "model", "day": self.day_sql}[by]
        p = self.placeholder
        sql = (
            f"SELECT {group} AS g, COUNT(*), {self.error_sql}, SUM(input_tokens), "
            "SUM(output_tokens), SUM(cached_tokens), SUM(reasoning_tokens), SUM(cost_usd) "
            f"FROM usage_records WHERE ts >= {p} AND ts < {p} GROUP BY g ORDER BY g"
        )
        end = until if until is not None else float("inf")

        def query(conn: Any) -> list[dict[str, Any]]:
            rows = conn.execute(sql, (since, end)).fetchall()
            return [
                {
                    **dict(zip(SUMMARY_COLUMNS, row, strict=True)),
                    "requests": int(row[1]),
                    "errors": int(row[2]),
                    "input_tokens": int(row[3]),
                    "output_tokens": int(row[4]),
                    "cached_tokens": int(row[5]),
                    "reasoning_tokens": int(row[6]),
                    "cost_usd": float(row[7]),
                }
                for row in rows
            ]

        return self._locked(query)

    def records(self, since: float = 0.0) -> list[UsageRecord]:
        """Every record since ``since``, oldest first (exports and tests)."""
        sql = (
            f"SELECT {', '.join(RECORD_COLUMNS)} FROM usage_records "
            f"WHERE ts >= {self.placeholder} ORDER BY id"
        )

        def query(conn: Any) -> list[UsageRecord]:
            result = []
            for row in conn.execute(sql, (since,)).fetchall():
                data = dict(zip(RECORD_COLUMNS, row, strict=True))
                for column in _BOOL_COLUMNS:
                    data[column] = bool(data[column])
                result.append(UsageRecord(**data))
            return result

        return self._locked(query)

    # -- LimitStore ---------------------------------------------------------------------------
    def get_limits_sync(self, scope: LimitScope, scope_id: str) -> Limits | None:
        p = self.placeholder
        sql = (
            "SELECT daily_usd, weekly_usd, monthly_usd, enforce, tpm FROM spend_limits "
            f"WHERE scope = {p} AND scope_id = {p}"
        )
        row = self._locked(lambda conn: conn.execute(sql, (scope, scope_id)).fetchone())
        if row is None:
            return None
        *amounts, enforce, tpm = row
        budgets: dict[Period, Budget] = {
            period: Budget(float(usd), bool(enforce))
            for period, usd in zip(PERIODS, amounts, strict=True)
            if usd is not None
        }
        return Limits(budgets, tpm)

    def set_limits_sync(self, scope: LimitScope, scope_id: str, limits: Limits) -> None:
        budgets = limits.budgets
        values = (
            scope,
            scope_id,
            *(budgets[p].limit_usd if p in budgets else None for p in PERIODS),
            all(b.enforce for b in budgets.values()),
            limits.tpm,
            time.time(),
        )
        p = self.placeholder
        sql = (
            "INSERT INTO spend_limits (scope, scope_id, daily_usd, weekly_usd, monthly_usd, "
            f"enforce, tpm, updated_at) VALUES ({', '.join([p] * 8)}) "
            "ON CONFLICT (scope, scope_id) DO UPDATE SET daily_usd = excluded.daily_usd, "
            "weekly_usd = excluded.weekly_usd, monthly_usd = excluded.monthly_usd, "
            "enforce = excluded.enforce, tpm = excluded.tpm, updated_at = excluded.updated_at"
        )
        self._locked(
            lambda conn: self._transaction(conn, lambda cursor: cursor.execute(sql, values))
        )
        self._cache.discard(f"{scope}:{scope_id}")

    def peek_limits(self, scope: LimitScope, scope_id: str) -> tuple[bool, Limits | None]:
        """``(True, limits)`` when they are cached and fresh, else ``(False, None)``: the spend
        layer's way to skip an ``await`` on the usual path."""
        return self._cache.get(f"{scope}:{scope_id}")

    async def get_limits(self, scope: LimitScope, scope_id: str) -> Limits | None:
        # Concurrent misses of one scope share one read (TTLCache.read_through).
        return await self._cache.read_through(
            f"{scope}:{scope_id}",
            partial(anyio.to_thread.run_sync, self.get_limits_sync, scope, scope_id),
        )

    async def set_limits(self, scope: LimitScope, scope_id: str, limits: Limits) -> None:
        await anyio.to_thread.run_sync(self.set_limits_sync, scope, scope_id, limits)
