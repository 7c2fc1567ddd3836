"""The SQLite key store: the embedded default, one file shared by every worker on a machine."""

from __future__ import annotations

import errno
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio
import anyio.to_thread

from akgate._sqlite import connect

from ._cache import TTLCache
from ._keys import KeyRecord
from ._stores import KeyStoreUnavailable, check_changes

__all__ = ["HOME_ENV", "SQLiteKeyStore", "default_db_path"]

HOME_ENV: Final = "AKGATE_HOME"
T = TypeVar("T")

logger = logging.getLogger("akgate.auth")

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


def _lookup(key_hash: str, conn: sqlite3.Connection) -> KeyRecord | None:
    row = conn.execute(_SELECT + " WHERE key_hash = ?", (key_hash,)).fetchone()
    return None if row is None else _row_to_record(row)


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

    Fail-safe (a broken store is a 503, never a 401 for every key): the file is created only by
    the first open of a store with ``create=True``; once opened, a missing file is an error, not a
    new empty database. Each database access checks that the path still names the opened file
    (device and inode): deleted, it is an error; replaced, it is reopened. A locked file, or a
    store busy in another thread, is waited for at most ``timeout`` seconds each.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        cache_ttl: float = 2.0,
        cache_size: int = 10_000,
        timeout: float = 1.0,
        create: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        self.path = Path(path) if path is not None else default_db_path()
        self.timeout = timeout
        self.create = create
        #: ``(st_dev, st_ino)`` of the file the connection has open.
        self._file_id: tuple[int, int] | None = None
        self._opened_once = False
        self._failing: str | None = None  # the reason last logged, so it is logged once
        self._cache: TTLCache[KeyRecord | None] = TTLCache(
            maxsize=cache_size, ttl=cache_ttl, clock=clock
        )
        #: The key hashes being read now, and what their readers set once done.
        self._conn: sqlite3.Connection | None = None
        # sqlite3 connections are not safe for concurrent use from several threads.
        self._lock = threading.Lock()
        # Like a file, a store that is dropped without aclose() still closes its connection
        # (the finalizer holds the list, not the store).
        self._opened: list[sqlite3.Connection] = []
        self._finalizer = weakref.finalize(self, _close_all, self._opened)

    def __repr__(self) -> str:
        return f"SQLiteKeyStore({str(self.path)!r})"

    def _file_identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino

    def _missing(self) -> OSError:
        return FileNotFoundError(errno.ENOENT, "the key store file is missing", str(self.path))

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            current = self._file_identity()
            if current is None:
                # Deleted (or moved) while open: the connection would go on answering from the
                # deleted inode, and keys created since would be unknown.
                self._drop_connection()
                raise self._missing()
            if current == self._file_id:
                return self._conn
            self._drop_connection()  # replaced by another file (a restore): reopen it
        exists = self._file_identity() is not None
        if not exists and (self._opened_once or not self.create):
            # Never a new empty database in place of a lost one: every key would be a 401.
            raise self._missing()
        if not exists:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        uri = self.path.absolute().as_uri() + ("?mode=rwc" if not exists else "?mode=rw")
        conn = connect(
            uri,
            timeout=self.timeout,
            pragmas=("journal_mode = WAL",),
            setup=lambda conn: conn.execute(_SCHEMA),
            uri=True,
        )
        self._file_id = self._file_identity()
        self._opened_once = True
        self._conn = conn
        self._opened.append(conn)
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._opened.remove(self._conn)
            self._conn = None

    def _run_locked(self, func: Callable[[sqlite3.Connection], T]) -> T:
        # Bounded: a thread stuck on a locked file must not queue every request behind it.
        if not self._lock.acquire(timeout=self.timeout):
            raise self._unavailable("busy: another operation is waiting for the file", None)
        try:
            result = func(self._connect())
        except (sqlite3.Error, OSError) as exc:
            # Drop the connection: the next call reopens (the file may have come back).
            self._drop_connection()
            raise self._unavailable(_reason(exc), exc) from exc
        finally:
            self._lock.release()
        if self._failing is not None:
            logger.warning("SQLite key store %s is available again", self.path)
            self._failing = None
        return result

    def _unavailable(self, reason: str, exc: BaseException | None) -> KeyStoreUnavailable:
        # (``exc`` is chained by the caller; the reason is what an operator needs to read.)
        if reason != self._failing:  # once per cause, not once per request
            self._failing = reason
            logger.error(
                "SQLite key store %s is unavailable (%s); requests get 503 until it is fixed",
                self.path,
                reason,
            )
        return KeyStoreUnavailable(f"SQLite key store {str(self.path)!r} is unavailable ({reason})")

    async def _run(self, func: Callable[[sqlite3.Connection], T]) -> T:
        return await anyio.to_thread.run_sync(self._run_locked, func)

    async def lookup(self, key_hash: str) -> KeyRecord | None:
        # Concurrent misses of one key share one read (TTLCache.read_through).
        read = partial(self._run, partial(_lookup, key_hash))
        return await self._cache.read_through(key_hash, read)

    def cached(self, key_hash: str) -> KeyRecord | None:
        """The record :meth:`lookup` would return from its cache now, else None (then ask
        :meth:`lookup`): ``APIKeyAuth`` takes a known key's record without a coroutine."""
        hit, record = self._cache.get(key_hash)
        return record if hit else None

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

    async def update(self, key_id: str, **changes: Any) -> KeyRecord | None:
        changes = check_changes(changes)
        # Column names come from UPDATABLE_FIELDS (checked above), never from the caller's text.
        assignments = ", ".join(f"{column} = ?" for column in changes)

        def update(conn: sqlite3.Connection) -> KeyRecord | None:
            # One statement per field set: a concurrent revocation is never overwritten.
            conn.execute(
                f"UPDATE api_keys SET {assignments} WHERE key_id = ?", (*changes.values(), key_id)
            )
            row = conn.execute(_SELECT + " WHERE key_id = ?", (key_id,)).fetchone()
            return None if row is None else _row_to_record(row)

        record = await self._run(update)
        # This process sees its own change at once; others within cache_ttl (as a revocation).
        self._cache.clear()
        return record

    async def aclose(self) -> None:
        def close() -> None:
            with self._lock:
                self._drop_connection()

        await anyio.to_thread.run_sync(close)
        self._cache.clear()


def _reason(exc: BaseException) -> str:
    """What went wrong, for the operator (no secrets can be in a SQLite or OS error)."""
    if isinstance(exc, FileNotFoundError):
        return "the file is missing: deleted or moved; restore it, akgate will not recreate it"
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return f"the file stayed locked for the whole wait ({exc})"
    return f"{type(exc).__name__}: {exc}"
