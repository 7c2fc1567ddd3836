"""RedisStats: samples shared between processes through a real redis-server."""

from __future__ import annotations

from typing import Any

import pytest

from akgate.routing import RedisStats

pytestmark = pytest.mark.redis


async def test_two_workers_share_samples(redis_server: Any) -> None:
    redis_server.flush()
    writer = RedisStats(redis_server.url, prefix="t1")
    reader = RedisStats(redis_server.url, prefix="t1")
    for v in (100.0, 200.0, 300.0):
        await writer.record("p", "m", ttft_ms=v, tps=v / 10)
    snap = await reader.snapshot([("p", "m")])
    assert snap[("p", "m")].ttft_p50 == 200.0
    assert snap[("p", "m")].tps_p95 == 30.0
    await writer.aclose()
    await reader.aclose()


async def test_window_caps_samples(redis_server: Any) -> None:
    redis_server.flush()
    stats = RedisStats(redis_server.url, prefix="t2", window=2)
    for v in (1.0, 2.0, 3.0):
        await stats.record("p", "m", ttft_ms=v, tps=None)
    snap = await stats.snapshot([("p", "m")])
    assert snap[("p", "m")].samples == 2
    await stats.aclose()


async def test_reads_cached_until_refresh(redis_server: Any) -> None:
    redis_server.flush()
    now = [0.0]
    reader = RedisStats(redis_server.url, prefix="t3", clock=lambda: now[0])
    writer = RedisStats(redis_server.url, prefix="t3")
    assert await reader.snapshot([("p", "m")]) == {}
    await writer.record("p", "m", ttft_ms=5.0, tps=None)
    assert await reader.snapshot([("p", "m")]) == {}  # cached "no data"
    now[0] = 10.0
    assert (await reader.snapshot([("p", "m")]))[("p", "m")].ttft_p50 == 5.0
    await reader.aclose()
    await writer.aclose()


async def test_redis_down_never_fails(redis_server_private: Any) -> None:
    stats = RedisStats(redis_server_private.url, prefix="t4")
    await stats.record("p", "m", ttft_ms=5.0, tps=1.0)
    assert (await stats.snapshot([("p", "m")]))[("p", "m")].samples == 1
    redis_server_private.stop()
    await stats.record("p", "m", ttft_ms=6.0, tps=1.0)  # logged, not raised
    stats._cache.clear()
    assert await stats.snapshot([("p", "m")]) == {}
    await stats.aclose()


async def test_routing_uses_redis_stats(redis_server: Any) -> None:
    from tests.routing.conftest import build, client
    from tests.routing.scripted import Scripted

    redis_server.flush()
    stats = RedisStats(redis_server.url, prefix="t5")
    seed = RedisStats(redis_server.url, prefix="t5")
    await seed.record("cheap", "alpha", ttft_ms=900.0, tps=10.0)
    await seed.record("pricey", "alpha", ttft_ms=50.0, tps=10.0)
    app = build({"cheap": Scripted("cheap"), "pricey": Scripted("pricey")}, stats=stats)
    body = {"model": "alpha:ttft-focus", "messages": [{"role": "user", "content": "hi"}]}
    async with client(app) as c:
        r = await c.post("/v1/chat/completions", json=body)
    assert r.json()["routing_metadata"]["provider"] == "pricey"
    await stats.aclose()
    await seed.aclose()


async def test_a_hung_redis_cannot_stall_the_plan() -> None:
    """A server that accepts and never answers: reads give up after the connector's timeout."""
    import socket

    import anyio

    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)  # connections complete in the kernel backlog; nothing ever replies
    port = hung.getsockname()[1]
    stats = RedisStats(f"redis://127.0.0.1:{port}/0", prefix="t6")
    try:
        with anyio.fail_after(10):
            assert await stats.snapshot([("p", "m")]) == {}
            await stats.record("p", "m", ttft_ms=5.0, tps=1.0)  # logged, not raised
    finally:
        await stats.aclose()
        hung.close()
