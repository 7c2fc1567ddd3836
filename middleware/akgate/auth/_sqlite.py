"""The SQLite key store: the embedded default, one file shared by every worker on a machine."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio.to_thread

from ._cache import TTLCache
from ._keys import KeyRecord
from ._stores import KeyStoreUnavailable

__all__ = ["HOME_ENV", "SQLiteKeyStore", "default_db_path"]

HOME_ENV: Final = "AKGATE_HOME"
T = TypeVar("T")

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    environment TEXT NOT NULL DEFAULT 'live',
    workspace_id TEXT NOT NULL DEFAULT 'default',
    workspace_name TEXT NOT NULL DEFAULT 'default',
    scopes TEXT NOT NULL DEFAULT '[]',
    allowed_models TEXT NOT NULL DEFAULT '[]',
    rate_limit_rpm INTEGER,
    expires_at REAL,
    created_at REAL NOT NULL,
    revoked_at REAL,
    profile TEXT NOT NULL DEFAULT 'inference',
    metadata TEXT NOT NULL DEFAULT '{}'
)
"""
_COLUMNS: Final = (
    "key_id",
    "key_hash",
    "name",
    "environment",
    "workspace_id",
    "workspace_name",
    "scopes",
    "allowed_models",
    "rate_limit_rpm",
    "expires_at",
    "created_at",
    "revoked_at",
    "profile",
    "metadata",
)
_JSON_COLUMNS: Final = frozenset({"scopes", "allowed_models", "metadata"})
_SELECT: Final = f"SELECT {', '.join(_COLUMNS)} FROM api_keys"


def _close_all(connections: list[sqlite3.Connection]) -> None:
    for conn in connections:
        conn.close()
    connections.clear()


def default_db_path() -> Path:
    """``$AKGATE_HOME/keys.sqlite3``, by default ``~/.akgate/keys.sqlite3``."""
    home = os.environ.get(HOME_ENV)
    base = Path(home) if home else Path.home() / ".akgate"
    return base / "keys.sqlite3"


def _row_to_record(row: tuple[Any, ...]) -> KeyRecord:
    data = dict(zip(_COLUMNS, row, strict=False))
    for column in _JSON_COLUMNS:
        data[column] = json.loads(data[column])
    return KeyRecord.from_dict(data)


class SQLiteKeyStore:
    """Keys in a SQLite file (created on first use, WAL mode, safe with several processes).

    Lookups are cached in memory for ``cache_ttl`` seconds (default 2 s, at most ``cache_size``
    entries), so a hot key costs no database access and a revocation made by another process
    takes effect within ``cache_ttl``. Blocking SQLite calls run in a worker thread.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        cache_ttl: float = 2.0,
        cache_size: int = 10_000,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.timeout = timeout
        self._cache: TTLCache[KeyRecord | None] = TTLCache(
            maxsize=cache_size, ttl=cache_ttl, clock=clock
        )
        self._conn: sqlite3.Connection | None = None
        # sqlite3 connections are not safe for concurrent use from several threads.
        self._lock = threading.Lock()
        # Like a file, a store that is dropped without aclose() still closes its connection
        # (the finalizer holds the list, not the store).
        self._opened: list[sqlite3.Connection] = []
        self._finalizer = weakref.finalize(self, _close_all, self._opened)

    def __repr__(self) -> str:
        return f"SQLiteKeyStore({str(self.path)!r})"

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, check_same_thread=False, isolation_level=None
            )
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute(_SCHEMA)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
            self._opened.append(conn)
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._opened.remove(self._conn)
            self._conn = None

    def _run_locked(self, func: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            try:
                return func(self._connect())
            except (sqlite3.Error, OSError) as exc:
                # Drop the connection: the next call reopens (the file may have come back).
                self._drop_connection()
                raise KeyStoreUnavailable(
                    f"SQLite key store {str(self.path)!r} is unavailable ({type(exc).__name__})"
                ) from exc

    async def _run(self, func: Callable[[sqlite3.Connection], T]) -> T:
        return await anyio.to_thread.run_sync(self._run_locked, func)

    async def lookup(self, key_hash: str) -> KeyRecord | None:
        hit, record = self._cache.get(key_hash)
        if hit:
            return record

        def query(conn: sqlite3.Connection) -> KeyRecord | None:
            row = conn.execute(_SELECT + " WHERE key_hash = ?", (key_hash,)).fetchone()
            return None if row is None else _row_to_record(row)

        record = await self._run(query)
        self._cache.set(key_hash, record)
        return record

    async def add(self, record: KeyRecord) -> None:
        data = record.to_dict()
        values = [json.dumps(data[c]) if c in _JSON_COLUMNS else data[c] for c in _COLUMNS]

        def insert(conn: sqlite3.Connection) -> bool:
            try:
                conn.execute(
                    f"INSERT INTO api_keys ({', '.join(_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(_COLUMNS))})",
                    values,
                )
            except sqlite3.IntegrityError:
                return False
            return True

        if not await self._run(insert):
            raise ValueError(f"duplicate key id {record.key_id}")
        self._cache.discard(record.key_hash)

    async def list_keys(self) -> list[KeyRecord]:
        def query(conn: sqlite3.Connection) -> list[KeyRecord]:
            rows = conn.execute(_SELECT + " ORDER BY created_at, key_id").fetchall()
            return [_row_to_record(row) for row in rows]

        return await self._run(query)

    async def revoke(self, key_id: str, *, at: float | None = None) -> bool:
        when = time.time() if at is None else at

        def update(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE key_id = ?",
                (when, key_id),
            )
            return cursor.rowcount > 0

        found = await self._run(update)
        # This process sees its own revocations at once; others within cache_ttl.
        self._cache.clear()
        return found

    async def aclose(self) -> None:
        def close() -> None:
            with self._lock:
                self._drop_connection()

        await anyio.to_thread.run_sync(close)
        self._cache.clear()
