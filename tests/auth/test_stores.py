"""Key stores: memory, SQLite (real file) and Redis (real redis-server)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from akgate.auth import (
    APIKeyAuth,
    KeyStore,
    KeyStoreUnavailable,
    MemoryKeyStore,
    RedisKeyStore,
    RedisRateLimiter,
    SQLiteKeyStore,
    create_key,
    ensure_demo_key,
)
from akgate.auth._keys import hash_key
from akgate.auth._sqlite import default_db_path
from tests.support.servers import RedisServer

from .conftest import Clock, bearer, client_for, inner_app


class Mono:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KeyStore]:
    if request.param == "memory":
        yield MemoryKeyStore()
        return
    if request.param == "sqlite":
        s: Any = SQLiteKeyStore(tmp_path / "keys.sqlite3")
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        server.flush()
        s = RedisKeyStore(server.url)
    yield s
    await s.aclose()


async def test_created_key_is_found_by_hash(store: KeyStore) -> None:
    new = await create_key(store, name="a", scopes=["chat"], rate_limit_rpm=7)
    record = await store.lookup(hash_key(new.key))
    assert record is not None
    assert (record.key_id, record.name, record.scopes, record.rate_limit_rpm) == (
        new.key_id,
        "a",
        ("chat",),
        7,
    )


async def test_unknown_hash_is_none(store: KeyStore) -> None:
    assert await store.lookup("0" * 64) is None


async def test_list_and_revoke(store: KeyStore) -> None:
    a = await create_key(store, name="a", now=1.0)
    b = await create_key(store, name="b", now=2.0)
    assert [r.key_id for r in await store.list_keys()] == [a.key_id, b.key_id]
    assert await store.revoke(a.key_id, at=5.0)
    assert not await store.revoke("ak_live_nothere1")
    records = {r.key_id: r for r in await store.list_keys()}
    assert records[a.key_id].revoked_at == 5.0
    assert not records[b.key_id].revoked


async def test_only_hashes_are_stored(store: KeyStore) -> None:
    new = await create_key(store, name="a")
    dumped = repr([r.to_dict() for r in await store.list_keys()])
    assert new.key not in dumped
    assert new.key[16:48] not in dumped


async def test_duplicate_key_is_refused(store: KeyStore) -> None:
    new = await create_key(store, name="a")
    with pytest.raises(ValueError):
        await create_key(store, key=new.key)


async def test_ensure_demo_key_only_on_fresh_store(store: KeyStore) -> None:
    secret = await ensure_demo_key(store)
    assert secret is not None
    assert secret.startswith("ak_test_")
    assert await ensure_demo_key(store) is None
    assert len(await store.list_keys()) == 1


async def test_sqlite_file_created_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "keys.sqlite3"
    store = SQLiteKeyStore(path)
    assert not path.exists()
    await store.list_keys()
    assert path.exists()
    # sqlite3's own context manager only commits: closing() closes the connection.
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    await store.aclose()


def test_default_db_path_honours_akgate_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AKGATE_HOME", str(tmp_path))
    assert default_db_path() == tmp_path / "keys.sqlite3"
    monkeypatch.delenv("AKGATE_HOME")
    assert default_db_path() == Path.home() / ".akgate" / "keys.sqlite3"


async def test_sqlite_two_processes_share_file(tmp_path: Path) -> None:
    writer, reader = SQLiteKeyStore(tmp_path / "k.db"), SQLiteKeyStore(tmp_path / "k.db")
    new = await create_key(writer, name="a")
    assert (await reader.lookup(hash_key(new.key))) is not None
    await writer.aclose()
    await reader.aclose()


async def test_sqlite_cache_hit_skips_database(tmp_path: Path) -> None:
    store = SQLiteKeyStore(tmp_path / "k.db")
    new = await create_key(store, name="a")
    assert await store.lookup(hash_key(new.key)) is not None

    async def fail(func: Any) -> Any:
        raise AssertionError("database touched")

    store._run = fail  # type: ignore[method-assign]
    assert await store.lookup(hash_key(new.key)) is not None


async def test_sqlite_revocation_elsewhere_applies_after_ttl(tmp_path: Path) -> None:
    clock = Mono()
    serving = SQLiteKeyStore(tmp_path / "k.db", cache_ttl=2.0, clock=clock)
    admin = SQLiteKeyStore(tmp_path / "k.db")
    new = await create_key(admin, name="a")
    key_hash = hash_key(new.key)
    assert not (await serving.lookup(key_hash)).revoked  # type: ignore[union-attr]
    await admin.revoke(new.key_id)
    assert not (await serving.lookup(key_hash)).revoked  # type: ignore[union-attr]
    clock.now += 2.0
    assert (await serving.lookup(key_hash)).revoked  # type: ignore[union-attr]
    await serving.aclose()
    await admin.aclose()


async def test_sqlite_concurrent_misses_of_one_key_read_it_once(tmp_path: Path) -> None:
    """When a hot key's cache entry expires, the requests in flight share one database read
    (one thread hop), and all get the record."""
    store = SQLiteKeyStore(tmp_path / "k.db")
    new = await create_key(store, name="a")
    key_hash = hash_key(new.key)
    original = store._run
    reads = 0

    async def counted(func: Any) -> Any:
        nonlocal reads
        reads += 1
        return await original(func)

    store._run = counted  # type: ignore[method-assign]
    records = await gather_lookups(store, [key_hash] * 16 + [hash_key("ak_live_" + "x" * 40)])
    assert reads == 2  # the key's row, and the unknown key's
    assert all(r is not None and r.key_id == new.key_id for r in records[:16])
    assert records[16] is None
    await store.aclose()


async def test_sqlite_a_failed_shared_read_fails_its_waiters_at_once(tmp_path: Path) -> None:
    """A broken store answers every request that waited for the shared read with the same
    error (a 503), without a read (and a wait) each; the next lookup reads again."""
    store = SQLiteKeyStore(tmp_path / "k.db")
    new = await create_key(store, name="a")
    original = store._run
    calls = 0

    async def first_fails(func: Any) -> Any:
        nonlocal calls
        calls += 1
        result = await original(func)
        if calls == 1:
            raise KeyStoreUnavailable("down")
        return result

    store._run = first_fails  # type: ignore[method-assign]
    outcomes = await gather_lookups(store, [hash_key(new.key)] * 4, errors=True)
    assert all(isinstance(o, KeyStoreUnavailable) for o in outcomes)
    assert calls == 1
    again = await store.lookup(hash_key(new.key))
    assert again is not None
    assert again.key_id == new.key_id
    await store.aclose()


async def gather_lookups(
    store: SQLiteKeyStore, hashes: list[str], *, errors: bool = False
) -> list[Any]:
    import asyncio

    return list(await asyncio.gather(*(store.lookup(h) for h in hashes), return_exceptions=errors))


async def test_sqlite_cache_is_bounded(tmp_path: Path) -> None:
    store = SQLiteKeyStore(tmp_path / "k.db", cache_size=3)
    for i in range(10):
        await store.lookup(f"{i:064d}")
    assert len(store._cache) == 3
    await store.aclose()


async def test_sqlite_unreadable_file_is_503(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    path.write_bytes(b"this is not a database" * 100)
    app = APIKeyAuth(inner_app, store=SQLiteKeyStore(path), clock=Clock())
    async with client_for(app) as c:
        from .conftest import make_key

        r = await c.get("/v1/models", headers=bearer(make_key().key))
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "service_unavailable"
    assert r.headers["retry-after"] == "1"


async def test_sqlite_store_error_is_key_store_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = SQLiteKeyStore(blocker / "keys.sqlite3")  # parent is a file
    with pytest.raises(KeyStoreUnavailable):
        await store.list_keys()


async def test_sqlite_store_serves_requests(tmp_path: Path) -> None:
    store = SQLiteKeyStore(tmp_path / "k.db")
    new = await create_key(store, name="a")
    async with client_for(APIKeyAuth(inner_app, store=store, clock=Clock())) as c:
        assert (await c.get("/v1/models", headers=bearer(new.key))).status_code == 200
    await store.aclose()


async def test_redis_repr_hides_url_password(redis_server: RedisServer) -> None:
    store = RedisKeyStore("redis://:hunter2@127.0.0.1:1/0")
    assert "hunter2" not in repr(store)
    await store.aclose()


async def test_redis_auto_limiter_shares_client(redis_server: RedisServer) -> None:
    store = RedisKeyStore(redis_server.url)
    app = APIKeyAuth(inner_app, store=store)
    assert isinstance(app.limiter, RedisRateLimiter)
    assert app.limiter.client is store.client
    await store.aclose()


async def test_redis_down_is_503_and_recovers(redis_server_private: RedisServer) -> None:
    store = RedisKeyStore(redis_server_private.url, cache_ttl=0)
    new = await create_key(store, name="a", rate_limit_rpm=100)
    app = APIKeyAuth(inner_app, store=store, clock=Clock())
    async with client_for(app) as c:
        assert (await c.get("/v1/models", headers=bearer(new.key))).status_code == 200
        redis_server_private.stop()
        r = await c.get("/v1/models", headers=bearer(new.key))
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "service_unavailable"
        assert r.headers["retry-after"] == "1"
        redis_server_private.start()  # same port, empty data set (no persistence)
        await store.add(new.record)
        assert (await c.get("/v1/models", headers=bearer(new.key))).status_code == 200
    await store.aclose()


async def test_redis_limiter_down_is_503(redis_server_private: RedisServer) -> None:
    from .conftest import make_key

    key = make_key(rate_limit_rpm=10)
    limiter = RedisRateLimiter(redis_server_private.url)
    app = APIKeyAuth(inner_app, store=MemoryKeyStore([key.record]), limiter=limiter, clock=Clock())
    async with client_for(app) as c:
        assert (await c.get("/v1/models", headers=bearer(key.key))).status_code == 200
        redis_server_private.stop()
        r = await c.get("/v1/models", headers=bearer(key.key))
        assert (r.status_code, r.json()["error"]["code"]) == (503, "service_unavailable")
        redis_server_private.start()
        assert (await c.get("/v1/models", headers=bearer(key.key))).status_code == 200
    await limiter.aclose()


async def test_a_dropped_sqlite_store_closes_its_connection(tmp_path: Path) -> None:
    store = SQLiteKeyStore(tmp_path / "keys.sqlite3")
    await store.list_keys()
    opened = store._opened
    assert len(opened) == 1
    # weakref.finalize runs this when the store is collected (and at exit); Python 3.13 warns
    # about connections nobody closed.
    assert store._finalizer.alive
    assert store._finalizer.atexit
    store._finalizer()
    assert opened == []
