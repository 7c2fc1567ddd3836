"""Per-key rate limits: headers, 429, windows, concurrency (memory and Redis)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import httpx

from akgate.auth import APIKeyAuth, MemoryKeyStore, MemoryRateLimiter, RedisRateLimiter
from tests.support.servers import RedisServer

from .conftest import CHAT, NOW, Clock, auth_app, bearer, client_for, inner_app, make_key

WORKER = Path(__file__).with_name("_limit_worker.py")


async def test_rate_headers_on_authenticated_response() -> None:
    key = make_key(rate_limit_rpm=3)
    async with client_for(auth_app(key)) as c:
        r = await c.post("/v1/chat/completions", json=CHAT, headers=bearer(key.key))
    assert r.headers["x-ratelimit-limit-requests"] == "3"
    assert r.headers["x-ratelimit-remaining-requests"] == "2"
    reset = datetime.fromisoformat(r.headers["x-ratelimit-reset-requests"].replace("Z", "+00:00"))
    assert reset.timestamp() == 1_700_000_040.0  # the end of the 60 s window holding NOW


async def test_rate_headers_also_on_403_after_authentication() -> None:
    key = make_key(rate_limit_rpm=3, scopes=["models"])
    async with client_for(auth_app(key)) as c:
        r = await c.post("/v1/chat/completions", json=CHAT, headers=bearer(key.key))
    assert r.status_code == 403
    assert r.headers["x-ratelimit-remaining-requests"] == "2"


async def test_no_rate_headers_on_401(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/models")
    assert "x-ratelimit-limit-requests" not in r.headers


async def test_over_limit_is_429_with_retry_after() -> None:
    key = make_key(rate_limit_rpm=2)
    async with client_for(auth_app(key)) as c:
        for _ in range(2):
            assert (await c.get("/v1/models", headers=bearer(key.key))).status_code == 200
        r = await c.get("/v1/models", headers=bearer(key.key))
    assert r.status_code == 429
    error = r.json()["error"]
    assert (error["code"], error["type"]) == ("rate_limit_exceeded", "rate_limit_error")
    assert r.headers["retry-after"] == "10"
    assert error["message"] == (
        "Rate limit exceeded: this key allows 2 requests per minute (rpm). Retry after 10 seconds."
    )
    assert r.headers["x-ratelimit-remaining-requests"] == "0"


async def test_limit_resets_in_next_window() -> None:
    clock = Clock()
    key = make_key(rate_limit_rpm=1)
    async with client_for(auth_app(key, clock=clock, limiter=MemoryRateLimiter(clock=clock))) as c:
        assert (await c.get("/v1/models", headers=bearer(key.key))).status_code == 200
        assert (await c.get("/v1/models", headers=bearer(key.key))).status_code == 429
        clock.now += 10
        assert (await c.get("/v1/models", headers=bearer(key.key))).status_code == 200


async def test_limits_are_per_key() -> None:
    a, b = make_key(rate_limit_rpm=1), make_key(rate_limit_rpm=1)
    async with client_for(auth_app(a, b)) as c:
        assert (await c.get("/v1/models", headers=bearer(a.key))).status_code == 200
        assert (await c.get("/v1/models", headers=bearer(b.key))).status_code == 200


async def test_default_rpm_applies_to_keys_without_limit() -> None:
    key = make_key()
    async with client_for(auth_app(key, default_rpm=1)) as c:
        assert (await c.get("/v1/models", headers=bearer(key.key))).status_code == 200
        assert (await c.get("/v1/models", headers=bearer(key.key))).status_code == 429


async def test_inner_app_rate_headers_are_replaced() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"X-RateLimit-Limit-Requests", b"999")],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    key = make_key(rate_limit_rpm=5)
    auth = APIKeyAuth(app, store=MemoryKeyStore([key.record]), limiter=MemoryRateLimiter())
    async with client_for(auth) as c:
        r = await c.get("/v1/models", headers=bearer(key.key))
    assert r.headers.get_list("x-ratelimit-limit-requests") == ["5"]


async def test_concurrent_requests_never_overshoot_in_one_process() -> None:
    key = make_key(rate_limit_rpm=20)
    app = auth_app(key)
    statuses: list[int] = []
    async with client_for(app) as c:

        async def one() -> None:
            statuses.append((await c.get("/v1/models", headers=bearer(key.key))).status_code)

        async with anyio.create_task_group() as tg:
            for _ in range(60):
                tg.start_soon(one)
    assert statuses.count(200) == 20
    assert statuses.count(429) == 40


async def test_memory_limiter_stays_bounded() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock=clock, max_keys=10)
    for i in range(10):
        await limiter.hit(f"k{i}", 5)
    clock.now += 60
    await limiter.hit("new", 5)
    assert len(limiter._counters) <= 10


async def test_redis_limiter_counts_atomically(redis_server: RedisServer) -> None:
    redis_server.flush()
    limiter = RedisRateLimiter(redis_server.url, clock=Clock())
    key = make_key(rate_limit_rpm=15)
    auth = APIKeyAuth(inner_app, store=MemoryKeyStore([key.record]), limiter=limiter, clock=Clock())
    statuses: list[int] = []
    async with client_for(auth) as c:

        async def one() -> None:
            statuses.append((await c.get("/v1/models", headers=bearer(key.key))).status_code)

        async with anyio.create_task_group() as tg:
            for _ in range(40):
                tg.start_soon(one)
    await limiter.aclose()
    assert statuses.count(200) == 15


def test_redis_limiter_shared_by_two_processes(redis_server: RedisServer) -> None:
    redis_server.flush()
    key = make_key(rate_limit_rpm=25)
    args = [sys.executable, str(WORKER), redis_server.url, key.key, str(NOW), "40"]
    cwd = Path(__file__).parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd / "middleware"), str(cwd)])}
    procs = [
        subprocess.Popen(args, stdout=subprocess.PIPE, cwd=cwd, env=env, text=True)
        for _ in range(2)
    ]
    counts = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    ok = sum(c["200"] for c in counts)
    assert 25 <= ok <= 25 + 2
    assert sum(c["429"] for c in counts) == 80 - ok
