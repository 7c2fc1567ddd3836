"""The SQLite usage store: the ledger and the spend limits in one file beside the key store.

The schema is versioned: ``schema_version`` holds the version the file is at, and
:data:`MIGRATIONS` lists the steps from each version to the next. Opening a file applies the
missing steps in one ``BEGIN IMMEDIATE`` transaction (so two processes starting at once upgrade
it once); a file newer than this akgate is refused rather than written wrongly.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

from akgate._sqlite import connect
from akgate.auth._sqlite import HOME_ENV

from ._record import RECORD_COLUMNS
from ._sqlstore import Row, SQLUsageStore, Statement, apply_migrations, plain_transaction

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


#: Rows per INSERT at most. Each statement is a few more GIL re-acquisitions for the writer, which
#: under a busy loop cost far more than the insert; a prepared statement keeps ~3 kB per row of
#: its shape (all shapes up to 4,096 rows: ~18 MB once a flush has needed the biggest). At ~9,000
#: requests a second, 4,096 rows is 3 statements a second instead of 11 (docs/spend.md).
_MAX_ROWS_PER_STATEMENT: Final = 4096
#: SQLITE_MAX_VARIABLE_NUMBER's default before SQLite 3.32 (999 parameters per statement), for
#: a Python without ``Connection.getlimit`` (3.10): the largest count every build accepts.
_FALLBACK_VARIABLE_LIMIT: Final = 999
#: ``sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER`` (named in the module from Python 3.11).
_LIMIT_VARIABLE_NUMBER: Final = 9


def rows_per_statement(conn: sqlite3.Connection) -> int:
    """How many usage rows one INSERT may carry on ``conn`` (its parameter limit, capped)."""
    getlimit = getattr(conn, "getlimit", None)
    limit = _FALLBACK_VARIABLE_LIMIT if getlimit is None else int(getlimit(_LIMIT_VARIABLE_NUMBER))
    # A column per field and row, and the count of real rows (insert_sql).
    return max(1, min(_MAX_ROWS_PER_STATEMENT, (limit - 1) // len(RECORD_COLUMNS)))


def statement_shapes(most: int) -> tuple[int, ...]:
    """The row counts INSERTs are prepared for: powers of 4 below ``most``, and ``most``. A few
    fixed shapes keep the connection's statement cache small (each size would be a new prepared
    statement of up to a few MB), at the price of padding a batch up to 4 times its size."""
    return (*itertools.takewhile(lambda n: n < most, (4**i for i in itertools.count())), most)


@functools.lru_cache(maxsize=64)
def insert_sql(rows: int) -> str:
    """An INSERT of up to ``rows`` rows: the rows' parameters, then how many of them are real
    (``LIMIT ?``: the padding after them is never read)."""
    one = "(" + ",".join("?" * len(RECORD_COLUMNS)) + ")"
    return (
        f"INSERT INTO usage_records ({', '.join(RECORD_COLUMNS)}) "
        f"SELECT * FROM (VALUES {','.join([one] * rows)}) LIMIT ?"
    )


#: The fields that are usually booleans, and those often None. The sqlite3 module binds an int,
#: a float or a str directly but looks a bool or None up in its adapter registry first (~0.3-0.5
#: µs each, against 20 ns for an int: most of a row's cost), so the writer hands SQLite what it
#: would store anyway: 1/0 for True/False, and NaN for None (SQLite binds a NaN as NULL). Any
#: column may hold either: the choice of columns is about speed, never about what is stored.
_BOOLEAN_FIELDS: Final = tuple(
    RECORD_COLUMNS.index(name) for name in ("stream", "client_disconnected", "estimated")
)
_OPTIONAL_FIELDS: Final = tuple(
    RECORD_COLUMNS.index(name) for name in ("provider", "provider_model", "ttft_ms", "error_code")
)
_NULL: Final = math.nan


def _bindable(params: list[Any], rows: int) -> None:
    """Replace, in the flat ``params`` of ``rows`` rows, the booleans and Nones of the columns
    that usually hold them by the values SQLite stores for them (see ``_BOOLEAN_FIELDS``)."""
    width = len(RECORD_COLUMNS)
    stop = rows * width
    for i in _BOOLEAN_FIELDS:
        params[i:stop:width] = [
            1 if v is True else 0 if v is False else v for v in params[i:stop:width]
        ]
    for i in _OPTIONAL_FIELDS:
        params[i:stop:width] = [_NULL if v is None else v for v in params[i:stop:width]]


def insert_statements(rows: Sequence[Row], most: int) -> list[Statement]:
    """The statements that insert ``rows`` in order, ``most`` rows per statement at most."""
    shapes = statement_shapes(most)
    width = len(RECORD_COLUMNS)
    statements: list[Statement] = []
    for start in range(0, len(rows), most):
        chunk = rows[start : start + most]
        shape = next(n for n in shapes if n >= len(chunk))
        params = list(itertools.chain.from_iterable(chunk))
        _bindable(params, len(chunk))
        # Padding rows are never read; zeros, because the sqlite3 module binds None through
        # its adapter lookup, several times slower than an int.
        params.extend(itertools.repeat(0, width * (shape - len(chunk))))
        params.append(len(chunk))
        statements.append((insert_sql(shape), params))
    return statements


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

    def _insert_statements(self, conn: Any, rows: Sequence[Row]) -> list[Statement]:
        return insert_statements(rows, rows_per_statement(conn))

    @plain_transaction
    def _transaction(self, conn: Any, work: Callable[[Any], T]) -> T:
        conn.execute("BEGIN")
        try:
            result = work(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result
