"""``KeyStore.update`` and ``akgate keys update --rpm``: a key's requests-per-minute limit changes
without re-issuing the key, in this process at once and in other processes within the cache TTL."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from akgate.auth import (
    APIKeyAuth,
    KeyStore,
    MemoryKeyStore,
    MemoryRateLimiter,
    RedisKeyStore,
    SQLiteKeyStore,
    create_key,
)
from akgate.auth._keys import hash_key
from akgate.cli import main
from tests.support.servers import RedisServer

from .conftest import Clock, bearer, client_for, inner_app

ROOT = Path(__file__).resolve().parents[2]


async def cli(*argv: str) -> int:
    """``akgate ...`` in a thread (the CLI runs its own event loop), as an admin would."""
    return await anyio.to_thread.run_sync(main, list(argv))


class Mono:
    """The stores' cache clock (monotonic seconds), moved by hand."""

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


async def test_update_sets_and_clears_rpm(store: KeyStore) -> None:
    new = await create_key(store, name="a", rate_limit_rpm=5, scopes=["chat"])
    updated = await store.update(new.key_id, rate_limit_rpm=50)
    assert updated is not None
    assert (updated.key_id, updated.rate_limit_rpm, updated.scopes) == (new.key_id, 50, ("chat",))
    assert (await store.lookup(hash_key(new.key))).rate_limit_rpm == 50  # type: ignore[union-attr]
    cleared = await store.update(new.key_id, rate_limit_rpm=None)
    assert cleared is not None
    assert cleared.rate_limit_rpm is None
    [listed] = await store.list_keys()
    assert listed.rate_limit_rpm is None
    assert listed.key_hash == new.record.key_hash  # the same key: nothing re-issued


async def test_update_of_unknown_key_is_none(store: KeyStore) -> None:
    assert await store.update("ak_live_nothere1", rate_limit_rpm=3) is None


async def test_update_refuses_bad_changes(store: KeyStore) -> None:
    new = await create_key(store, name="a")
    with pytest.raises(ValueError, match="cannot update key_hash"):
        await store.update(new.key_id, key_hash="0" * 64)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="rate_limit_rpm"):
            await store.update(new.key_id, rate_limit_rpm=bad)
    with pytest.raises(ValueError, match="nothing to update"):
        await store.update(new.key_id)


async def test_update_keeps_a_revocation(store: KeyStore) -> None:
    new = await create_key(store, name="a", rate_limit_rpm=5)
    assert await store.revoke(new.key_id, at=7.0)
    updated = await store.update(new.key_id, rate_limit_rpm=9)
    assert updated is not None
    assert updated.revoked_at == 7.0
    assert (await store.lookup(hash_key(new.key))).revoked  # type: ignore[union-attr]


def _serving_store(kind: str, tmp_path: Path, clock: Mono, request: pytest.FixtureRequest) -> Any:
    if kind == "sqlite":
        return SQLiteKeyStore(tmp_path / "keys.sqlite3", cache_ttl=2.0, clock=clock)
    server: RedisServer = request.getfixturevalue("redis_server")
    server.flush()
    return RedisKeyStore(server.url, cache_ttl=2.0, clock=clock)


def _redis_url(store: RedisKeyStore) -> str:
    kwargs = store.client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_cli_update_reaches_another_worker(
    kind: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A serving worker (its own store object, cached) and ``akgate keys update`` (another store
    object on the same SQLite file or Redis): the new rpm, then no rpm, apply to the worker's
    next request once its cache entry is older than ``cache_ttl``."""
    mono, clock = Mono(), Clock()
    serving = _serving_store(kind, tmp_path, mono, request)
    new = await create_key(serving, name="a", rate_limit_rpm=2)
    app = APIKeyAuth(inner_app, store=serving, limiter=MemoryRateLimiter(clock=clock), clock=clock)
    where = ["--db", str(tmp_path / "keys.sqlite3")] if kind == "sqlite" else []
    if kind == "redis":
        where = ["--redis", _redis_url(serving)]
    async with client_for(app) as c:
        statuses = [(await c.get("/v1/models", headers=bearer(new.key))).status_code for _ in "xyz"]
        assert statuses == [200, 200, 429]

        assert await cli("keys", "update", new.key_id, "--rpm", "5", *where) == 0
        printed = json.loads(capsys.readouterr().out)
        assert printed == {"key_id": new.key_id, "rate_limit_rpm": 5}
        # Within the TTL the worker still answers from its cache (as for a revocation) ...
        assert (await c.get("/v1/models", headers=bearer(new.key))).status_code == 429
        mono.now += 2.0
        # ... then its next request sees 5 per minute: 4 counted so far, so one more passes.
        r = await c.get("/v1/models", headers=bearer(new.key))
        assert r.status_code == 200
        assert r.headers["x-ratelimit-limit-requests"] == "5"
        assert r.headers["x-ratelimit-remaining-requests"] == "0"
        assert (await c.get("/v1/models", headers=bearer(new.key))).status_code == 429

        assert await cli("keys", "update", new.key_id, "--rpm", "none", *where) == 0
        assert json.loads(capsys.readouterr().out)["rate_limit_rpm"] is None
        mono.now += 2.0
        r = await c.get("/v1/models", headers=bearer(new.key))
        assert r.status_code == 200
        assert "x-ratelimit-limit-requests" not in r.headers  # no limit, no headers
        me = await c.get("/v1/me", headers=bearer(new.key))
        assert me.json()["rate_limits"]["inference_rpm"] == 0
    await serving.aclose()


async def test_update_in_the_serving_process_applies_at_once(tmp_path: Path) -> None:
    clock = Clock()
    store = SQLiteKeyStore(tmp_path / "keys.sqlite3", cache_ttl=60.0)
    new = await create_key(store, name="a", rate_limit_rpm=1)
    app = APIKeyAuth(inner_app, store=store, limiter=MemoryRateLimiter(clock=clock), clock=clock)
    async with client_for(app) as c:
        assert (await c.get("/v1/models", headers=bearer(new.key))).status_code == 200
        assert (await c.get("/v1/models", headers=bearer(new.key))).status_code == 429
        await store.update(new.key_id, rate_limit_rpm=10)  # no TTL to wait for
        assert (await c.get("/v1/models", headers=bearer(new.key))).status_code == 200
    await store.aclose()


async def test_cli_update_from_another_process(tmp_path: Path) -> None:
    """``python -m akgate keys update`` in a child process, a worker serving from the same file."""
    mono, clock = Mono(), Clock()
    db = tmp_path / "keys.sqlite3"
    serving = SQLiteKeyStore(db, cache_ttl=2.0, clock=mono)
    new = await create_key(serving, name="a", rate_limit_rpm=1)
    app = APIKeyAuth(inner_app, store=serving, limiter=MemoryRateLimiter(clock=clock), clock=clock)
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'middleware'}{os.pathsep}{ROOT}"}
    async with client_for(app) as c:
        assert (await c.get("/v1/models", headers=bearer(new.key))).status_code == 200
        assert (await c.get("/v1/models", headers=bearer(new.key))).status_code == 429
        argv = ["keys", "update", new.key_id, "--rpm", "3", "--db", str(db)]
        done = await anyio.run_process([sys.executable, "-m", "akgate", *argv], env=env)
        assert done.returncode == 0
        mono.now += 2.0
        r = await c.get("/v1/models", headers=bearer(new.key))
        assert r.status_code == 200
        assert r.headers["x-ratelimit-limit-requests"] == "3"
    await serving.aclose()


def test_cli_update_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "keys.sqlite3"
    assert main(["keys", "update", "ak_live_zzzzzzzz", "--db", str(db), "--rpm", "3"]) == 1
    err = capsys.readouterr().err
    assert "keys.sqlite3" in err or "no key" in err  # a missing file is never created
    assert not db.exists()
    with pytest.raises(SystemExit):
        main(["keys", "update", "ak_live_zzzzzzzz", "--db", str(db), "--rpm", "0"])
    assert "--rpm must be >= 1" in capsys.readouterr().err


async def test_redis_update_and_revoke_at_once_keep_both(redis_server: RedisServer) -> None:
    """Two admins (two store objects) change one key at the same moment: WATCH makes the later
    write retry on the record the earlier one left, so neither change is lost."""
    import anyio

    redis_server.flush()
    one, two = RedisKeyStore(redis_server.url), RedisKeyStore(redis_server.url)
    try:
        for rpm in range(1, 21):
            new = await create_key(one, name=f"k{rpm}")
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: one.update(new.key_id, rate_limit_rpm=rpm))
                tg.start_soon(lambda: two.revoke(new.key_id))
            three = RedisKeyStore(redis_server.url, cache_ttl=0)
            record = await three.lookup(hash_key(new.key))
            await three.aclose()
            assert record is not None
            assert (record.rate_limit_rpm, record.revoked) == (rpm, True)
    finally:
        await one.aclose()
        await two.aclose()


async def test_a_store_of_your_own_with_only_lookup_still_serves() -> None:
    """A team's store written before ``update`` existed keeps working with ``gateway(keys=...)``."""
    import httpx

    from akgate import gateway
    from akgate.auth._keys import generate_key

    key = generate_key("test")[0]
    record = await MemoryKeyStore.from_keys([key]).lookup(hash_key(key))

    class LookupOnly:
        async def lookup(self, key_hash: str) -> Any:
            return record if key_hash == hash_key(key) else None

    app = gateway(inner_app, keys=LookupOnly(), models=["m"], demo=False)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        ok = await client.post("/v1/chat/completions", json=body, headers=bearer(key))
        refused = await client.post("/v1/chat/completions", json=body, headers=bearer("ak_test_x"))
    assert ok.status_code == 200, ok.text
    assert refused.status_code == 401
