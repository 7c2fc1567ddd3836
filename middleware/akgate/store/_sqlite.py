"""The SQLite response store: one file (WAL) shared by every worker on a machine."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio.to_thread
from pydantic_core import from_json, to_json

from ._base import (
    DEFAULT_MAX_RECORD_SIZE,
    DEFAULT_TTL,
    ResponseStoreUnavailable,
    StoredResponse,
    check_size,
)

__all__ = ["SQLiteResponseStore", "default_responses_path"]

T = TypeVar("T")

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS responses (
        workspace TEXT NOT NULL, id TEXT NOT NULL, expires_at REAL NOT NULL, data BLOB NOT NULL,
        PRIMARY KEY (workspace, id))""",
    "CREATE INDEX IF NOT EXISTS responses_expiry ON responses (expires_at)",
    """CREATE TABLE IF NOT EXISTS response_items (
        workspace TEXT NOT NULL, id TEXT NOT NULL, response_id TEXT NOT NULL,
        data BLOB NOT NULL, PRIMARY KEY (workspace, id))""",
    "CREATE INDEX IF NOT EXISTS response_items_owner ON response_items (workspace, response_id)",
    """CREATE TABLE IF NOT EXISTS response_events (
        response_id TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL,
        PRIMARY KEY (response_id, seq))""",
    "CREATE TABLE IF NOT EXISTS response_cancels (response_id TEXT PRIMARY KEY)",
)


def default_responses_path() -> Path:
    """``responses.sqlite3`` beside the key store (``$AKGATE_HOME``, by default ``~/.akgate``)."""
    from akgate.auth._sqlite import default_db_path

    return default_db_path().parent / "responses.sqlite3"


def _close_all(connections: list[sqlite3.Connection]) -> None:
    for conn in connections:
        conn.close()
    connections.clear()


class SQLiteResponseStore:
    """Responses in a SQLite file (created on first use, WAL mode, safe with several processes).

    Blocking calls run in a worker thread. Expired rows read as not found at once and are
    deleted by :meth:`prune` (``akgate responses prune``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        ttl: float = DEFAULT_TTL,
        max_record_size: int = DEFAULT_MAX_RECORD_SIZE,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl <= 0 or max_record_size <= 0:
            raise ValueError("ttl and max_record_size must be positive")
        self.path = Path(path) if path is not None else default_responses_path()
        self.ttl = ttl
        self.max_record_size = max_record_size
        self.timeout = timeout
        self.clock = clock
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one connection, never used by two threads at once
        self._opened: list[sqlite3.Connection] = []
        self._finalizer = weakref.finalize(self, _close_all, self._opened)

    def __repr__(self) -> str:
        return f"SQLiteResponseStore({str(self.path)!r})"

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, check_same_thread=False, isolation_level=None
            )
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
                conn.execute("PRAGMA journal_mode = WAL")
                # WAL + NORMAL: a commit survives a process crash; only power loss may lose
                # the last transactions. The store's hot path is one commit per stored turn.
                conn.execute("PRAGMA synchronous = NORMAL")
                for statement in _SCHEMA:
                    conn.execute(statement)
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
                self._drop_connection()  # the next call reopens (the file may come back)
                raise ResponseStoreUnavailable(
                    f"SQLite response store is unavailable ({type(exc).__name__})"
                ) from exc

    async def _run(self, func: Callable[[sqlite3.Connection], T]) -> T:
        return await anyio.to_thread.run_sync(self._run_locked, func)

    async def save(self, record: StoredResponse) -> None:
        data = record.to_json()
        check_size(data, self.max_record_size)
        items = [(record.workspace, i["id"], record.id, to_json(i)) for i in record.items()]

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
                    (record.workspace, record.id, record.expires_at, data),
                )
                conn.executemany("INSERT OR REPLACE INTO response_items VALUES (?, ?, ?, ?)", items)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        await self._run(write)

    async def load(self, workspace: str, response_id: str) -> StoredResponse | None:
        return (await self.load_many(workspace, [response_id]))[0]

    async def load_many(
        self, workspace: str, response_ids: Sequence[str]
    ) -> list[StoredResponse | None]:
        ids = list(dict.fromkeys(response_ids))
        if not ids:
            return []
        now = self.clock()

        def query(conn: sqlite3.Connection) -> dict[str, bytes]:
            found: dict[str, bytes] = {}
            for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
                chunk = ids[start : start + 500]
                rows = conn.execute(
                    "SELECT id, data FROM responses WHERE workspace = ? AND expires_at > ? "
                    f"AND id IN ({', '.join('?' * len(chunk))})",
                    (workspace, now, *chunk),
                ).fetchall()
                found.update(rows)
            return found

        rows = await self._run(query)
        return [
            StoredResponse.from_json(rows[rid]) if rid in rows else None for rid in response_ids
        ]

    async def delete(self, workspace: str, response_id: str) -> bool:
        now = self.clock()

        def remove(conn: sqlite3.Connection) -> bool:
            conn.execute("BEGIN IMMEDIATE")
            try:
                rows = conn.execute(
                    "SELECT expires_at FROM responses WHERE workspace = ? AND id = ?",
                    (workspace, response_id),
                ).fetchall()
                conn.execute(
                    "DELETE FROM responses WHERE workspace = ? AND id = ?", (workspace, response_id)
                )
                conn.execute(
                    "DELETE FROM response_items WHERE workspace = ? AND response_id = ?",
                    (workspace, response_id),
                )
                if rows:
                    conn.execute(
                        "DELETE FROM response_events WHERE response_id = ?", (response_id,)
                    )
                    conn.execute(
                        "DELETE FROM response_cancels WHERE response_id = ?", (response_id,)
                    )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return bool(rows) and rows[0][0] > now

        return await self._run(remove)

    async def find_items(
        self, workspace: str, item_ids: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        ids = list(dict.fromkeys(item_ids))
        if not ids:
            return {}
        now = self.clock()

        def query(conn: sqlite3.Connection) -> list[tuple[str, bytes]]:
            found: list[tuple[str, bytes]] = []
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                found += conn.execute(
                    "SELECT i.id, i.data FROM response_items i JOIN responses r "
                    "ON r.workspace = i.workspace AND r.id = i.response_id "
                    "WHERE i.workspace = ? AND r.expires_at > ? "
                    f"AND i.id IN ({', '.join('?' * len(chunk))})",
                    (workspace, now, *chunk),
                ).fetchall()
            return found

        return {item_id: from_json(data) for item_id, data in await self._run(query)}

    async def append_events(self, response_id: str, events: Sequence[tuple[int, bytes]]) -> None:
        rows = [(response_id, seq, data) for seq, data in events]

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("INSERT OR REPLACE INTO response_events VALUES (?, ?, ?)", rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        if rows:
            await self._run(write)

    async def events_after(self, response_id: str, after: int) -> list[tuple[int, bytes]]:
        def query(conn: sqlite3.Connection) -> list[tuple[int, bytes]]:
            return conn.execute(
                "SELECT seq, data FROM response_events WHERE response_id = ? AND seq > ? "
                "ORDER BY seq",
                (response_id, after),
            ).fetchall()

        return await self._run(query)

    async def request_cancel(self, response_id: str) -> None:
        await self._run(
            lambda conn: conn.execute(
                "INSERT OR IGNORE INTO response_cancels VALUES (?)", (response_id,)
            )
        )

    async def cancel_requested(self, response_id: str) -> bool:
        row = await self._run(
            lambda conn: conn.execute(
                "SELECT 1 FROM response_cancels WHERE response_id = ?", (response_id,)
            ).fetchone()
        )
        return row is not None

    async def prune(self) -> int:
        now = self.clock()

        def remove(conn: sqlite3.Connection) -> int:
            conn.execute("BEGIN IMMEDIATE")
            try:
                count = conn.execute("DELETE FROM responses WHERE expires_at <= ?", (now,)).rowcount
                conn.execute(
                    "DELETE FROM response_items WHERE NOT EXISTS (SELECT 1 FROM responses r "
                    "WHERE r.workspace = response_items.workspace "
                    "AND r.id = response_items.response_id)"
                )
                for table in ("response_events", "response_cancels"):
                    conn.execute(
                        f"DELETE FROM {table} WHERE NOT EXISTS (SELECT 1 FROM responses r "
                        f"WHERE r.id = {table}.response_id)"
                    )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return int(count)

        return await self._run(remove)

    async def aclose(self) -> None:
        def close() -> None:
            with self._lock:
                self._drop_connection()

        await anyio.to_thread.run_sync(close)
