"""Budgets: enforced and soft, per key and per workspace, periods, headers, /v1/me."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import anyio
import pytest

from akgate.usage import Limits
from akgate.usage._middleware import format_usd
from tests.usage.conftest import CHAT, CHAT_COST, NOON, Stack

MIDNIGHT = 1_773_273_600.0  # 2026-03-12 00:00:00 UTC


async def test_budget_reached_mid_day_then_429_until_next_day(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(Limits.of(daily=4 * CHAT_COST))
    costs = []
    async with stack.client() as client:
        for _ in range(4):
            r = await client.post("/v1/chat/completions", json=CHAT)
            assert r.status_code == 200, r.text
            assert r.headers["x-budget-daily-limit"] == "0.0001"
            assert "x-budget-exceeded" not in r.headers
            costs.append(r.json()["routing_metadata"]["cost"]["usd"])
        # The spend has reached the limit: refused, with the headers and the reset time.
        r = await client.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 429
        error = r.json()["error"]
        assert error["code"] == "budget_exhausted"
        assert error["type"] == "rate_limit_error"
        assert r.headers["x-budget-exceeded"] == "true"
        assert r.headers["x-budget-exceeded-period"] == "daily"
        assert r.headers["x-budget-exceeded-scope"] == "api_key"
        assert r.headers["x-budget-daily-spend"] == format_usd(round(sum(costs) * 1e10))
        assert r.headers["retry-after"] == str(math.ceil(MIDNIGHT - NOON))
        assert r.headers["x-should-retry"] == "false"
        # Still refused later that day; served again in the next period.
        stack.clock.now = MIDNIGHT - 1
        assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 429
        stack.clock.now = MIDNIGHT
        r = await client.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 200
        assert r.headers["x-budget-daily-spend"] == "0.00"
    records = stack.records()
    assert [r.status for r in records] == [200] * 4 + [429, 429, 200]
    refused = records[4]
    assert refused.cost_usd == 0
    assert refused.error_code == "budget_exhausted"
    assert sum(r.cost_usd for r in records[:4]) == pytest.approx(4 * CHAT_COST)


async def test_soft_budget_serves_and_flags(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(Limits.of(daily=CHAT_COST, monthly=1.0, enforce=False))
    async with stack.client() as client:
        first = await client.post("/v1/chat/completions", json=CHAT)
        assert "x-budget-exceeded" not in first.headers
        for _ in range(2):
            r = await client.post("/v1/chat/completions", json=CHAT)
            assert r.status_code == 200
            assert r.headers["x-budget-exceeded"] == "true"
            assert r.headers["x-budget-exceeded-period"] == "daily"
            assert r.headers["x-budget-monthly-limit"] == "1.00"
    assert [r.status for r in stack.records()] == [200, 200, 200]


async def test_workspace_budget_applies_to_every_key_of_it(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(None, Limits.of(weekly=CHAT_COST))
    async with stack.client() as client:
        assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
        r = await client.post("/v1/responses", json={"model": "demo", "input": "hi"})
        assert r.status_code == 429
        assert r.headers["x-budget-exceeded-scope"] == "workspace"
        assert r.headers["x-budget-exceeded-period"] == "weekly"
        # The ISO week ends on Monday 2026-03-16 00:00 UTC.
        assert r.headers["retry-after"] == str(math.ceil(1_773_619_200 - NOON))


async def test_me_shows_limit_spend_and_reset(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(Limits.of(daily=1.0, monthly=20.0, tpm=5000), Limits.of(daily=50.0))
    async with stack.client() as client:
        await client.post("/v1/chat/completions", json=CHAT)
        r = await client.get("/v1/me")
    assert r.status_code == 200
    me = r.json()
    budgets = {(b["scope"], b["period"]): b for b in me["budgets"]}
    assert budgets["api_key", "daily"] == {
        "scope": "api_key",
        "period": "daily",
        "limit_usd": 1.0,
        "spend_usd": CHAT_COST,
        "reserved_usd": 0.0,
        "enforce": True,
        "resets_at": "2026-03-12T00:00:00Z",
    }
    assert budgets["api_key", "monthly"]["resets_at"] == "2026-04-01T00:00:00Z"
    assert budgets["workspace", "daily"]["spend_usd"] == CHAT_COST
    assert me["tokens_per_minute"] == 5000
    assert r.headers["x-budget-daily-limit"] == "1.00"  # the key's, before the workspace's
    assert r.headers["x-budget-monthly-spend"] == "0.000025"


async def test_concurrent_requests_overshoot_at_most_one_estimate(
    make_stack: Callable[..., Stack],
) -> None:
    """32 streams at once against a budget with room for 4 answers (3 estimates)."""
    limit = 0.0005
    stack = make_stack(Limits.of(daily=limit), token_delay=0.002)
    body = stream_body()
    async with stack.client() as client:
        for _ in range(16):  # spend most of it first: 0.0004 of 0.0005
            assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
        statuses: list[int] = []

        async def one() -> None:
            r = await client.post("/v1/chat/completions", content=body, headers=JSON)
            statuses.append(r.status_code)

        async with anyio.create_task_group() as tg:
            for _ in range(32):
                tg.start_soon(one)
    records = stack.records()
    spent = sum(r.cost_usd for r in records)
    # Reservations admit while spend + reserved < limit: 0, 1 and 2 estimates are below
    # 0.0001, 3 are not. Without them all 32 would pass (nothing is settled before they end).
    assert statuses.count(200) == 3, statuses
    assert spent <= limit + admission_estimate(body)  # the documented bound
    assert await counter_spend(stack) == pytest.approx(spent, abs=1e-12)  # counters == ledger


JSON = {"content-type": "application/json"}


def stream_body() -> bytes:
    return json.dumps({**CHAT, "stream": True}, separators=(",", ":")).encode()


def admission_estimate(body: bytes, max_tokens: int = 20) -> float:
    """body/4 input tokens and max_tokens output tokens at the demo prices ($0.5/$1.5 per 1M)."""
    return (math.ceil(len(body) / 4) * 0.5 + max_tokens * 1.5) / 1_000_000


async def counter_spend(stack: Stack) -> float:
    async with stack.client() as client:
        me = (await client.get("/v1/me")).json()
    return float(sum(b["spend_usd"] for b in me["budgets"]))


async def test_app_budget_headers_are_replaced_by_the_layers(
    make_stack: Callable[..., Stack],
) -> None:
    from akgate.usage import SpendControl

    stack = make_stack(Limits.of(daily=1.0))

    async def upstream_like(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"X-Budget-Daily-Limit", b"999.00"),
                    (b"x-budget-exceeded", b"true"),
                    (b"x-ratelimit-limit-requests", b"7"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"{}"})

    layer = stack.app.app.app  # type: ignore[attr-defined]
    assert isinstance(layer, SpendControl)
    layer.app = upstream_like
    async with stack.client() as client:
        r = await client.post("/v1/chat/completions", json=CHAT)
    assert r.headers.get_list("x-budget-daily-limit") == ["1.00"]
    assert "x-budget-exceeded" not in r.headers
    assert r.headers["x-ratelimit-limit-requests"] == "7"  # not the spend layer's to replace


async def test_budget_refusal_on_messages_uses_anthropics_envelope(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(Limits.of(daily=0.0))
    async with stack.client() as client:
        r = await client.post(
            "/v1/messages",
            json={"model": "demo", "max_tokens": 9, "messages": [{"role": "user", "content": "x"}]},
            headers={"anthropic-version": "2023-06-01"},
        )
    assert r.status_code == 429
    assert r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "rate_limit_error"
    assert "daily budget" in r.json()["error"]["message"]
    assert r.headers["x-budget-exceeded-period"] == "daily"
    assert r.headers["retry-after"] == str(math.ceil(MIDNIGHT - NOON))


class AwaitOnlyLimits:
    """A limit store of an app's own: the two protocol methods, no ``peek_limits``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    async def get_limits(self, scope: Any, scope_id: str) -> Limits | None:
        self.calls += 1
        result: Limits | None = await self.inner.get_limits(scope, scope_id)
        return result

    async def set_limits(self, scope: Any, scope_id: str, limits: Limits) -> None:
        await self.inner.set_limits(scope, scope_id, limits)


async def test_a_limit_store_without_peek_is_awaited(make_stack: Callable[..., Stack]) -> None:
    wrapped: list[AwaitOnlyLimits] = []

    def wrap(inner: Any) -> AwaitOnlyLimits:
        wrapped.append(AwaitOnlyLimits(inner))
        return wrapped[0]

    stack = make_stack(Limits.of(daily=CHAT_COST), wrap_limits=wrap)
    async with stack.client() as client:
        assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
        r = await client.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "budget_exhausted"
    assert wrapped[0].calls == 4  # key and workspace, per request


async def test_sqlite_limits_served_from_the_cache_then_reread(tmp_path: Any) -> None:
    """The spend layer reads a SQL store's limits from its cache without an await, and sees a
    change made elsewhere once the cache entry is older than ``cache_ttl``."""
    from akgate.usage import SQLiteUsageStore

    class Mono:
        now = 100.0

        def __call__(self) -> float:
            return self.now

    mono = Mono()
    store = SQLiteUsageStore(tmp_path / "u.sqlite3", clock=mono)
    admin = SQLiteUsageStore(tmp_path / "u.sqlite3")
    admin.set_limits_sync("api_key", "ak_live_aaaaaaaa", Limits.of(tpm=10))
    assert store.peek_limits("api_key", "ak_live_aaaaaaaa") == (False, None)
    assert (await store.get_limits("api_key", "ak_live_aaaaaaaa")) == Limits.of(tpm=10)
    assert store.peek_limits("api_key", "ak_live_aaaaaaaa") == (True, Limits.of(tpm=10))
    admin.set_limits_sync("api_key", "ak_live_aaaaaaaa", Limits.of(tpm=20))
    assert store.peek_limits("api_key", "ak_live_aaaaaaaa") == (True, Limits.of(tpm=10))
    mono.now += 2.0
    assert store.peek_limits("api_key", "ak_live_aaaaaaaa") == (False, None)
    assert (await store.get_limits("api_key", "ak_live_aaaaaaaa")) == Limits.of(tpm=20)
    store.close()
    admin.close()
