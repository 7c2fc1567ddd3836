"""The SQLite response store: one file (WAL) shared by every worker on a machine."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio.to_thread
from pydantic_core import from_json, to_json

from akgate._sqlite import connect

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
    # Items are deleted by id (the record lists them): an index on their owner would cost every
    # stored turn a page write for nothing. Files made before this drop it.
    "DROP INDEX IF EXISTS response_items_owner",
    """CREATE TABLE IF NOT EXISTS response_events (
        response_id TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL,
        PRIMARY KEY (response_id, seq))""",
    "CREATE TABLE IF NOT EXISTS response_cancels (response_id TEXT PRIMARY KEY)",
)


def _create_schema(conn: sqlite3.Connection) -> None:
    for statement in _SCHEMA:
        conn.execute(statement)


#: The store's thread ends after this long without a call (a new one starts with the next call),
#: so a store nobody closes does not keep a thread, nor itself, alive.
_IDLE_SECONDS: Final = 10.0

#: Delivers a call's outcome (result, exception) to whoever waits for it.
_Reply = Callable[[Any, BaseException | None], None]


def _CLOSE(conn: sqlite3.Connection) -> None:
    """Queued by ``aclose``: the store's thread closes the connection (it does not open one)."""


#: The loop's connection does not checkpoint; the store's thread does after this many commits
#: (about SQLite's own default of 1000 WAL pages, at a few pages per stored turn).
_CHECKPOINT_EVERY: Final = 250


def _is_busy(exc: BaseException) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED (with any extended code): another connection holds it."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is None:
        return "locked" in str(exc)  # "database is locked", "database table is locked"
    return isinstance(code, int) and code & 0xFF in (5, 6)


def _checkpoint(conn: sqlite3.Connection) -> None:
    # RESTART: once it is done, the next write starts the log from its beginning again.
    conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()


#: One turn's rows: the record's, and its items'.
_Turn = tuple[tuple[str, str, float, bytes], list[tuple[str, str, str, bytes]]]


def _write_turns(turns: list[_Turn]) -> Callable[[sqlite3.Connection], None]:
    """One transaction writing ``turns``."""

    def write(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)", [row for row, _ in turns]
            )
            conn.executemany(
                "INSERT OR REPLACE INTO response_items VALUES (?, ?, ?, ?)",
                [item for _, items in turns for item in items],
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    return write


def _settle_all(
    futures: list[asyncio.Future[Any]], result: Any, error: BaseException | None
) -> None:
    for future in futures:
        _settle(future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return  # the caller was cancelled; the call itself has completed (or failed) anyway
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


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

    A busy database (another worker holding the write lock) never blocks the event loop: a
    turn's insert and the reads by id run on the loop's own connection only when they can go at
    once (:meth:`_run_on_loop`; turns saved together share one transaction, and wait in memory
    while a checkpoint is queued, :meth:`save`); every other call, and those that found the
    database busy, run in order in one thread of the store, fed by a queue (a third of the cost
    of a thread-pool hop, ``docs/benchmarks.md``). A caller that is cancelled does not undo a
    call it queued. Expired rows read as not found at once and are deleted by :meth:`prune`
    (``akgate responses prune``).
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
        self._calls: queue.SimpleQueue[tuple[Callable[[sqlite3.Connection], Any], _Reply]] = (
            queue.SimpleQueue()
        )
        self._thread_lock = threading.Lock()
        self._thread_running = False
        #: The event loop's own connection (:meth:`_run_on_loop`), and the thread that uses it.
        self._loop_conn: sqlite3.Connection | None = None
        self._loop_thread: int | None = None
        self._loop_commits = 0
        #: A checkpoint is queued: writes wait until it is done (else a stream of writes from
        #: the loop could keep it from ever completing, and the log would grow).
        self._checkpointing = False
        #: Turns held for a shared transaction (:meth:`save`), the loop that holds them, the
        #: turns saved in this pass of the loop, and whether the previous pass saved several.
        self._batch: list[tuple[_Turn, asyncio.Future[None]]] = []
        self._batch_loop: asyncio.AbstractEventLoop | None = None
        self._pass_turns = 0
        self._batching = False
        self._opened: list[sqlite3.Connection] = []
        self._finalizer = weakref.finalize(self, _close_all, self._opened)

    def __repr__(self) -> str:
        return f"SQLiteResponseStore({str(self.path)!r})"

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # WAL + NORMAL: a commit survives a process crash; only power loss may lose the
            # last transactions. The store's hot path is one commit per stored turn.
            conn = connect(
                self.path,
                timeout=self.timeout,
                pragmas=("journal_mode = WAL", "synchronous = NORMAL"),
                setup=_create_schema,
            )
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

    def _submit(self, func: Callable[[sqlite3.Connection], Any], reply: _Reply) -> None:
        with self._thread_lock:
            self._calls.put((func, reply))
            if not self._thread_running:
                self._thread_running = True
                threading.Thread(
                    target=self._serve, name="akgate-sqlite-responses", daemon=True
                ).start()

    def _serve(self) -> None:
        """The store's thread: run the queued calls in order; end when idle."""
        while True:
            try:
                func, reply = self._calls.get(timeout=_IDLE_SECONDS)
            except queue.Empty:
                with self._thread_lock:
                    if self._calls.empty():
                        self._thread_running = False
                        return
                continue
            try:
                if func is _CLOSE:
                    result = None
                    with self._lock:
                        self._drop_connection()
                else:
                    result = self._run_locked(func)
            except BaseException as exc:  # delivered to the caller, whatever it is
                reply(None, exc)
            else:
                reply(result, None)
            del func, reply

    async def _run_on_loop(self, func: Callable[[sqlite3.Connection], T], *, writes: bool) -> T:
        """Run a short call (a turn's insert, a read by key) on the event loop's own connection
        when it can go at once, else in the store's thread.

        That connection never waits: its busy timeout is 0, so when another worker holds the
        write lock the call goes to the store's thread, which waits up to ``timeout``. It never
        checkpoints either (the step that syncs the file): the store's thread does, every
        :data:`_CHECKPOINT_EVERY` commits made here. What is left on the loop is the insert
        itself into the OS page cache, which costs less than the two thread switches of a hop
        (``docs/benchmarks.md``).
        """
        conn = self._loop_conn
        if writes and self._checkpointing:
            return await self._run(func)  # queued behind the checkpoint, which then completes
        here = threading.get_ident()
        if self._loop_thread is not None and self._loop_thread != here:
            return await self._run(func)  # a loop in another thread: the queue
        if conn is None:
            conn = await self._run(self._open_loop_connection)
            self._loop_thread = here
        try:
            result = func(conn)
        except (sqlite3.Error, OSError) as exc:
            self._reset_loop_connection(busy=_is_busy(exc))
            return await self._run(func)  # the store's thread waits, retries or reports
        if writes:
            self._count_loop_writes(1)
        return result

    def _checkpointed(self, result: Any, error: BaseException | None) -> None:
        """Runs in the store's thread once a checkpoint is done (or failed: the next one
        retries), and wakes the loop to write the turns held meanwhile. The flag is cleared
        before the loop is read: a turn held because the loop still saw the flag set is
        always written by this wake-up."""
        self._checkpointing = False
        loop = self._batch_loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._write_batch, loop)
            except RuntimeError:
                pass  # the loop has closed

    def _open_loop_connection(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        """Runs in the store's thread (``conn`` has made the file and its schema)."""
        if self._loop_conn is None:
            loop_conn = connect(
                self.path, timeout=0, pragmas=("synchronous = NORMAL", "wal_autocheckpoint = 0")
            )
            self._opened.append(loop_conn)
            self._loop_conn = loop_conn
        return self._loop_conn

    def _reset_loop_connection(self, *, busy: bool) -> None:
        """After a failed call: roll back what it left open; after anything but a busy
        database, drop the connection (the next call opens a new one)."""
        conn = self._loop_conn
        if conn is not None and busy and conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                busy = False
        if not busy:
            self._close_loop_connection()

    def _close_loop_connection(self) -> None:
        conn, self._loop_conn = self._loop_conn, None
        if conn is not None:
            conn.close()
            self._opened.remove(conn)

    async def _run(self, func: Callable[[sqlite3.Connection], T]) -> T:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # another event loop (trio): wait in a pool thread instead
            return await anyio.to_thread.run_sync(self._run_and_wait, func)
        future: asyncio.Future[T] = loop.create_future()

        def reply(result: Any, error: BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:
                pass  # the loop has closed: nobody waits for this call any more

        self._submit(func, reply)
        return await future

    def _run_and_wait(self, func: Callable[[sqlite3.Connection], T]) -> T:
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def reply(result: Any, error: BaseException | None) -> None:
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(result)

        self._submit(func, reply)
        return done.result()

    async def save(self, record: StoredResponse) -> None:
        data = record.to_json()
        check_size(data, self.max_record_size)
        turn: _Turn = (
            (record.workspace, record.id, record.expires_at, data),
            [(record.workspace, i["id"], record.id, to_json(i)) for i in record.items()],
        )
        loop = self._own_loop()
        if loop is None:
            await self._run_on_loop(_write_turns([turn]), writes=True)
            return
        # Group commit. A turn is held in memory, to share one transaction with the others
        # held, while a checkpoint is queued (until it is done), and when other turns are
        # saved in the same pass of the loop (written at the start of the next pass): after
        # the first of this pass, or from the first on when the previous pass saved several.
        # A lone request's turn is written at once: it waits for no extra pass.
        hold = self._checkpointing or self._batching or self._pass_turns > 0
        if self._pass_turns == 0:
            loop.call_soon(self._next_pass, loop)
        self._pass_turns += 1
        if not hold:
            await self._run_on_loop(_write_turns([turn]), writes=True)
            return
        future: asyncio.Future[None] = loop.create_future()
        self._batch.append((turn, future))
        await future  # returns once the turn is committed

    def _own_loop(self) -> asyncio.AbstractEventLoop | None:
        """The running asyncio loop, when this is the thread of the loop's connection; else
        ``None`` (the connection is not open yet, another thread's loop owns it, or this is
        trio: :meth:`_run_on_loop` decides)."""
        if self._loop_conn is None or self._loop_thread != threading.get_ident():
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # trio
            return None
        # Set before the checkpoint flag is read: the thread clears the flag, then reads this
        # to wake the loop, so a turn held for a checkpoint is always written.
        self._batch_loop = loop
        return loop

    def _next_pass(self, loop: asyncio.AbstractEventLoop) -> None:
        self._batching = self._pass_turns >= 2
        self._pass_turns = 0
        self._write_batch(loop)

    def _write_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Write the held turns in one transaction on the loop's connection; when it is busy
        (or broken) the store's thread writes them (it waits for the lock, retries or
        reports)."""
        if self._checkpointing:
            return  # another checkpoint: held until it is done (its thread calls again)
        batch, self._batch = self._batch, []
        if not batch:
            return
        write = _write_turns([turn for turn, _ in batch])
        futures = [future for _, future in batch]
        conn = self._loop_conn
        if conn is not None:
            try:
                write(conn)
            except (sqlite3.Error, OSError) as exc:
                self._reset_loop_connection(busy=_is_busy(exc))
            else:
                for future in futures:
                    _settle(future, None, None)
                self._count_loop_writes(len(batch))
                return

        def reply(result: Any, error: BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(_settle_all, futures, result, error)
            except RuntimeError:
                pass  # the loop has closed: nobody waits for these writes any more

        self._submit(write, reply)

    def _count_loop_writes(self, turns: int) -> None:
        """Queue a checkpoint in the store's thread every :data:`_CHECKPOINT_EVERY` turns
        written from the loop."""
        before = self._loop_commits
        self._loop_commits += turns
        if self._loop_commits // _CHECKPOINT_EVERY != before // _CHECKPOINT_EVERY:
            self._checkpointing = True
            self._submit(_checkpoint, self._checkpointed)

    async def load(self, workspace: str, response_id: str) -> StoredResponse | None:
        return (await self.load_many(workspace, [response_id]))[0]

    async def update(
        self, workspace: str, record_id: str, change: Callable[[StoredResponse], bool]
    ) -> StoredResponse | None:
        now = self.clock()
        limit = self.max_record_size

        def read_change_write(conn: sqlite3.Connection) -> StoredResponse | None:
            # BEGIN IMMEDIATE takes the write lock before the read: another worker's update of
            # the same record waits for this one, then reads what it wrote.
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT data FROM responses WHERE workspace = ? AND id = ? AND expires_at > ?",
                    (workspace, record_id, now),
                ).fetchone()
                if row is None:
                    conn.execute("ROLLBACK")
                    return None
                record = StoredResponse.from_json(row[0])
                # A copy of its own: ``change`` may edit the record's items in place.
                before = {i["id"]: i for i in StoredResponse.from_json(row[0]).items()}
                if not change(record):
                    conn.execute("ROLLBACK")
                    return record
                data = record.to_json()
                check_size(data, limit)
                conn.execute(
                    "UPDATE responses SET data = ?, expires_at = ? WHERE workspace = ? AND id = ?",
                    (data, record.expires_at, workspace, record_id),
                )
                after = record.items()
                # Only new or edited items are written: an append costs its own items.
                conn.executemany(
                    "INSERT OR REPLACE INTO response_items VALUES (?, ?, ?, ?)",
                    [
                        (workspace, item["id"], record_id, to_json(item))
                        for item in after
                        if before.get(item["id"]) != item
                    ],
                )
                kept = {item["id"] for item in after}
                _delete_items(
                    conn, workspace, record_id, [i for i in before.values() if i["id"] not in kept]
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return record

        return await self._run(read_change_write)

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

        rows = await self._run_on_loop(query, writes=False)
        return [
            StoredResponse.from_json(rows[rid]) if rid in rows else None for rid in response_ids
        ]

    async def delete(self, workspace: str, response_id: str) -> bool:
        now = self.clock()

        def remove(conn: sqlite3.Connection) -> bool:
            conn.execute("BEGIN IMMEDIATE")
            try:
                rows = conn.execute(
                    "SELECT expires_at, data FROM responses WHERE workspace = ? AND id = ?",
                    (workspace, response_id),
                ).fetchall()
                conn.execute(
                    "DELETE FROM responses WHERE workspace = ? AND id = ?", (workspace, response_id)
                )
                if rows:
                    _delete_items(
                        conn, workspace, response_id, StoredResponse.from_json(rows[0][1]).items()
                    )
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

        found = await self._run_on_loop(query, writes=False)
        return {item_id: from_json(data) for item_id, data in found}

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
        if self._batch:  # its callers get their answer before the store closes
            if self._checkpointing:
                await self._run(lambda conn: None)  # the checkpoint it waits for is done
            self._write_batch(asyncio.get_running_loop())
        if self._loop_thread in (None, threading.get_ident()):
            self._close_loop_connection()  # nothing runs on it now: its calls never await
            self._loop_thread = None
        # Through the queue: every call made before it has been written when it returns.
        await self._run(_CLOSE)


def _delete_items(
    conn: sqlite3.Connection, workspace: str, response_id: str, items: Sequence[dict[str, Any]]
) -> None:
    """Remove ``items`` from the index where ``response_id`` still owns them (a later record
    that stored an item with the same id keeps it)."""
    conn.executemany(
        "DELETE FROM response_items WHERE workspace = ? AND id = ? AND response_id = ?",
        [(workspace, item["id"], response_id) for item in items],
    )
