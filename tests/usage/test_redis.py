"""Budgets shared through Redis: one atomic admission, two processes, a Redis outage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from akgate.auth import new_key_record
from akgate.usage import Limits, RedisSpendCounters, Slot
from akgate.usage._periods import period_window
from tests.support.servers import RedisServer
from tests.usage.conftest import CHAT, NOON, Stack
from tests.usage.test_budgets import admission_estimate, counter_spend, stream_body

pytestmark = pytest.mark.redis
WORKER = Path(__file__).with_name("_spend_worker.py")


async def test_redis_reserve_is_atomic_and_settles(redis_server: RedisServer) -> None:
    redis_server.flush()
    counters = RedisSpendCounters(redis_server.url, clock=lambda: NOON)
    slot = Slot("b:api_key:k:d1", 100, True, NOON + 60, 60)
    try:
        first = await counters.reserve([slot])
        second = await counters.reserve([slot])
        third = await counters.reserve([slot])  # 0 + 120 >= 100: refused, nothing reserved
        assert (first.blocked, second.blocked, third.blocked) == (-1, -1, 0)
        assert third.used == [(0, 120)]
        await counters.settle([slot, slot], [30, 40])
        assert await counters.read([slot.key]) == [(70, 0)]
    finally:
        await counters.aclose()


async def test_budget_over_redis_counters(
    redis_server: RedisServer, make_stack: Callable[..., Stack]
) -> None:
    redis_server.flush()
    stack = make_stack(
        Limits.of(daily=0.00005),
        counters=lambda clock: RedisSpendCounters(redis_server.url, clock=clock),
    )
    async with stack.client() as client:
        statuses = [(await client.post("/v1/chat/completions", json=CHAT)).status_code]
        statuses.append((await client.post("/v1/chat/completions", json=CHAT)).status_code)
        refused = await client.post("/v1/chat/completions", json=CHAT)
    assert statuses == [200, 200]
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "budget_exhausted"
    assert await counter_spend(stack) == pytest.approx(sum(r.cost_usd for r in stack.records()))
    await stack.counters.aclose()  # type: ignore[attr-defined]


async def test_redis_down_is_503(
    redis_server_private: RedisServer, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(
        Limits.of(daily=1.0),
        counters=lambda clock: RedisSpendCounters(
            redis_server_private.url, clock=clock, timeout=0.2
        ),
    )
    redis_server_private.stop()
    async with stack.client() as client:
        r = await client.post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "service_unavailable"
    assert r.headers["retry-after"] == "1"
    assert stack.records()[0].status == 503
    await stack.counters.aclose()  # type: ignore[attr-defined]


async def shared_spend(url: str, key_id: str) -> tuple[int, int]:
    counters = RedisSpendCounters(url)
    try:
        label = period_window("daily", NOON).label
        ((spent, reserved),) = await counters.read([f"b:api_key:{key_id}:{label}"])
        return spent, reserved
    finally:
        await counters.aclose()


def test_two_processes_share_one_budget(redis_server: RedisServer) -> None:
    """16 + 16 concurrent streams in two processes against room for about 3 estimates."""
    redis_server.flush()
    new = new_key_record(name="shared")
    key = new.key
    limit = 0.0001
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "middleware"), str(root)])}
    args = [sys.executable, str(WORKER), redis_server.url, key, str(NOON), "16", str(limit)]
    procs = [
        subprocess.Popen(args, stdout=subprocess.PIPE, cwd=root, env=env, text=True)
        for _ in range(2)
    ]
    results = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    statuses = [s for r in results for s in r["statuses"]]
    spent = sum(c for r in results for c in r["costs"])
    assert statuses.count(200) >= 1
    assert statuses.count(429) >= 1
    assert spent <= limit + admission_estimate(stream_body())  # the documented bound
    # The shared counter holds exactly what the two ledgers recorded, nothing left reserved.
    counted, reserved = anyio.run(shared_spend, redis_server.url, new.key_id)
    assert reserved == 0
    assert counted == sum(round(c * 1e10) for r in results for c in r["costs"])


async def test_gateway_with_redis_shares_budget_counters(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    from akgate import DemoModel, SpendControl, gateway

    app = gateway(DemoModel(), redis_url=redis_server.url, usage_db=tmp_path / "u.sqlite3")
    layer = app.app.app  # type: ignore[attr-defined]
    assert isinstance(layer, SpendControl)
    assert isinstance(layer.counters, RedisSpendCounters)
    await app.aclose()  # type: ignore[attr-defined]


def _redis_calls(url: str) -> dict[str, int]:
    import redis

    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {name: int(value["calls"]) for name, value in stats.items()}


async def test_redis_costs_one_round_trip_to_admit_and_one_to_settle(
    redis_server: RedisServer, make_stack: Callable[..., Stack]
) -> None:
    """Key and workspace budgets plus tpm (four counters): one EVALSHA at admission, one at
    settlement, nothing else, with the limits served from the store's cache."""
    redis_server.flush()
    stack = make_stack(
        Limits.of(daily=1.0, monthly=5.0, tpm=100_000),
        Limits.of(daily=2.0),
        counters=lambda clock: RedisSpendCounters(redis_server.url, clock=clock),
    )
    async with stack.client() as client:
        assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200  # warm
        before = _redis_calls(redis_server.url)
        r = await client.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 200
        assert r.headers["x-ratelimit-limit-tokens"] == "100000"
        after = _redis_calls(redis_server.url)
    calls = {
        name.removeprefix("cmdstat_"): after[name] - before.get(name, 0)
        for name in after
        if after[name] != before.get(name, 0)
    }
    for own in ("info", "hello"):  # this test's own connection
        calls.pop(own, None)
    # Two round trips; the rest run inside Redis, in the two scripts: four HMGET + HINCRBY +
    # PEXPIRE to check and reserve, two HINCRBY per counter to settle.
    assert calls == {"evalsha": 2, "hmget": 4, "hincrby": 4 + 8, "pexpire": 4}
    await stack.counters.aclose()  # type: ignore[attr-defined]
