"""The PostgreSQL usage store: one ledger and one set of limits for several hosts.

Needs the ``postgres`` extra (``pip install 'akgate[postgres]'``: psycopg 3), imported only
when the store is created. The schema is versioned like the SQLite file's
(``schema_version`` + :data:`PG_MIGRATIONS`); the upgrade runs in one transaction under a
transaction-level advisory lock, so hosts starting at once upgrade the database once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from ._record import RECORD_COLUMNS
from ._sqlstore import Row, SQLUsageStore, Statement, apply_migrations, plain_transaction

__all__ = [
    "COLUMN_TYPES",
    "INSERT_SQL",
    "PG_MIGRATIONS",
    "PostgresUsageStore",
    "is_postgres_url",
    "pg_migrate",
]

T = TypeVar("T")

#: Step ``i`` upgrades a database from version ``i`` to ``i + 1``.
PG_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE usage_records (
            id BIGSERIAL PRIMARY KEY,
            ts DOUBLE PRECISION NOT NULL,
            request_id TEXT NOT NULL,
            key_id TEXT NOT NULL,
            workspace_id TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            model TEXT NOT NULL,
            provider TEXT,
            provider_model TEXT,
            input_tokens BIGINT NOT NULL DEFAULT 0,
            output_tokens BIGINT NOT NULL DEFAULT 0,
            cached_tokens BIGINT NOT NULL DEFAULT 0,
            reasoning_tokens BIGINT NOT NULL DEFAULT 0,
            cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
            cache_savings_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
            ttft_ms DOUBLE PRECISION,
            duration_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
            status INTEGER NOT NULL,
            error_code TEXT,
            stream BOOLEAN NOT NULL DEFAULT FALSE,
            client_disconnected BOOLEAN NOT NULL DEFAULT FALSE,
            estimated BOOLEAN NOT NULL DEFAULT FALSE
        )""",
        "CREATE INDEX usage_records_ts ON usage_records (ts)",
        "CREATE INDEX usage_records_key_ts ON usage_records (key_id, ts)",
        """CREATE TABLE spend_limits (
            scope TEXT NOT NULL,
            scope_id TEXT NOT NULL,
            daily_usd DOUBLE PRECISION,
            weekly_usd DOUBLE PRECISION,
            monthly_usd DOUBLE PRECISION,
            enforce BOOLEAN NOT NULL DEFAULT TRUE,
            tpm BIGINT,
            updated_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (scope, scope_id)
        )""",
    ),
)
#: The type of each column of ``usage_records`` (as :data:`PG_MIGRATIONS` creates it), for the
#: arrays one INSERT unnests.
COLUMN_TYPES: Final = {
    "ts": "double precision",
    "request_id": "text",
    "key_id": "text",
    "workspace_id": "text",
    "endpoint": "text",
    "model": "text",
    "provider": "text",
    "provider_model": "text",
    "input_tokens": "bigint",
    "output_tokens": "bigint",
    "cached_tokens": "bigint",
    "reasoning_tokens": "bigint",
    "cost_usd": "double precision",
    "cache_savings_usd": "double precision",
    "ttft_ms": "double precision",
    "duration_ms": "double precision",
    "status": "integer",
    "error_code": "text",
    "stream": "boolean",
    "client_disconnected": "boolean",
    "estimated": "boolean",
}
#: One INSERT for a whole batch: one array parameter per column, unnested into rows in order.
INSERT_SQL: Final = (
    f"INSERT INTO usage_records ({', '.join(RECORD_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"%s::{COLUMN_TYPES[column]}[]" for column in RECORD_COLUMNS)
    + ")"
)
#: Any constant shared by akgate processes: the advisory lock that serializes upgrades.
_MIGRATION_LOCK: Final = 0x616B67617465


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def pg_migrate(conn: Any, steps: Sequence[Sequence[str]] = PG_MIGRATIONS) -> int:
    """Bring the database to the newest schema; returns the version it was at."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        return apply_migrations(conn, steps, "%s")


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the PostgreSQL usage store needs the postgres extra: pip install 'akgate[postgres]'"
        ) from exc
    return psycopg


class PostgresUsageStore(SQLUsageStore):
    """Usage records and spend limits in PostgreSQL (``postgresql://user@host/db``)."""

    placeholder = "%s"
    day_sql = "to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    error_sql = "COUNT(error_code)"
    name = "PostgreSQL"

    def __init__(
        self,
        url: str,
        *,
        cache_ttl: float = 2.0,
        connect_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not is_postgres_url(url):
            raise ValueError("a PostgreSQL URL starts with postgresql:// or postgres://")
        psycopg = _psycopg()
        super().__init__(cache_ttl=cache_ttl, clock=clock)
        self.url = url
        self.connect_timeout = connect_timeout
        self.errors = (psycopg.Error, OSError)
        self._psycopg = psycopg

    def __repr__(self) -> str:
        # The URL may carry a password: never in the repr.
        return "PostgresUsageStore(...)"

    def _describe(self) -> str:
        return "(PostgreSQL)"

    def _open(self) -> Any:
        conn = self._psycopg.connect(
            self.url, autocommit=True, connect_timeout=max(1, round(self.connect_timeout))
        )
        try:
            pg_migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _insert_statements(self, conn: Any, rows: Sequence[Row]) -> list[Statement]:
        # Columns as lists (psycopg adapts a list, not a tuple, to an array).
        return [(INSERT_SQL, [list(column) for column in zip(*rows, strict=True)])]

    @plain_transaction
    def _transaction(self, conn: Any, work: Callable[[Any], T]) -> T:
        with conn.transaction(), conn.cursor() as cursor:
            return work(cursor)
