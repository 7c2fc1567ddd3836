"""The SQLite key store fails safe: a lost, deleted or locked file is a 503, never a 401."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from akgate.auth import APIKeyAuth, KeyStoreUnavailable, SQLiteKeyStore, create_key

from .conftest import Clock, bearer, client_for, inner_app


async def make_store(path: Path, **options: float) -> tuple[SQLiteKeyStore, str]:
    store = SQLiteKeyStore(path, cache_ttl=0, **options)
    new = await create_key(store, name="a")
    return store, new.key


async def get(store: SQLiteKeyStore, key: str) -> httpx.Response:
    async with client_for(APIKeyAuth(inner_app, store=store, clock=Clock())) as c:
        return await c.get("/v1/models", headers=bearer(key))


def assert_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response.headers["retry-after"] == "1"


async def test_missing_file_on_reopen_is_503_not_an_empty_database(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keys.sqlite3"
    store, key = await make_store(path)
    assert (await get(store, key)).status_code == 200
    await store.aclose()  # the connection is gone; the next lookup reopens the file
    path.unlink()
    caplog.set_level(logging.ERROR, "akgate.auth")
    assert_503(await get(store, key))
    assert_503(await get(store, key))
    assert not path.exists()  # never recreated empty
    lines = [r.getMessage() for r in caplog.records if "missing" in r.getMessage()]
    assert len(lines) == 1  # logged once, clearly, not once per request
    assert str(path) in lines[0]
    assert key not in caplog.text
    await store.aclose()


async def test_a_store_that_may_not_create_refuses_a_missing_file(tmp_path: Path) -> None:
    store = SQLiteKeyStore(tmp_path / "nothing.db", create=False)
    with pytest.raises(KeyStoreUnavailable, match="missing"):
        await store.list_keys()
    assert not (tmp_path / "nothing.db").exists()


async def test_file_deleted_while_running_is_503_and_a_restore_is_picked_up(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys.sqlite3"
    store, key = await make_store(path)
    assert (await get(store, key)).status_code == 200
    backup = tmp_path / "backup.sqlite3"
    with (
        contextlib.closing(sqlite3.connect(path)) as source,
        contextlib.closing(sqlite3.connect(backup)) as target,
    ):
        source.backup(target)
    path.unlink()  # the open connection still reads the deleted inode
    for name in ("keys.sqlite3-wal", "keys.sqlite3-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    assert_503(await get(store, key))
    with pytest.raises(KeyStoreUnavailable, match="missing"):
        await store.revoke("ak_live_whatever")  # not "no key with id"
    backup.rename(path)  # restored: a new inode, reopened
    assert (await get(store, key)).status_code == 200
    await store.aclose()


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold the database the way a backup tool or ``sqlite3`` shell with an open exclusive
    transaction does: nobody else can read it."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("UPDATE api_keys SET name = name")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


async def test_a_locked_file_is_503_within_a_bounded_wait(tmp_path: Path) -> None:
    path = tmp_path / "keys.sqlite3"
    setup, key = await make_store(path)
    await setup.aclose()
    store = SQLiteKeyStore(path, cache_ttl=0)  # the default bound: 1 s per wait
    app = APIKeyAuth(inner_app, store=store, clock=Clock())
    statuses: list[int] = []
    latencies: list[float] = []

    async def one(c: httpx.AsyncClient) -> None:
        t0 = time.perf_counter()
        response = await c.get("/v1/models", headers=bearer(key))
        latencies.append(time.perf_counter() - t0)
        statuses.append(response.status_code)

    with exclusive_lock(path):
        async with client_for(app) as c, anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(one, c)
    assert statuses == [503] * 8
    # Each request waits at most for the store's lock and the file's lock (1 s each), instead
    # of queueing behind the others (the old default waited 5 s each, one after the other).
    assert max(latencies) < 4.0, latencies
    assert (await get(store, key)).status_code == 200  # the lock is gone: served again
    await store.aclose()


def test_timeout_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timeout"):
        SQLiteKeyStore(tmp_path / "k", timeout=0)
