"""Tokens per minute, and what the openai and auriko SDKs make of the spend refusals."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import auriko
import httpx
import openai
import pytest

from akgate._types import Receive, Scope, Send
from akgate.usage import Limits
from tests.support.servers import run_uvicorn
from tests.usage.conftest import CHAT, NOON, Stack


async def test_tpm_refuses_with_token_headers_until_the_next_minute(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(Limits.of(tpm=100))
    async with stack.client() as client:
        served = []
        for _ in range(6):
            r = await client.post("/v1/chat/completions", json=CHAT)
            served.append(r.status_code)
            assert r.headers["x-ratelimit-limit-tokens"] == "100"
            assert r.headers["x-ratelimit-reset-tokens"] == "2026-03-11T12:01:00Z"
        # 20 tokens per answer: five fill the minute, the sixth is refused.
        assert served == [200] * 5 + [429]
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
        assert "100 tokens per minute (tpm)" in r.json()["error"]["message"]
        assert r.headers["retry-after"] == "60"
        assert r.headers["x-ratelimit-remaining-tokens"] == "0"
        assert "x-should-retry" not in r.headers  # a token limit is worth retrying
        stack.clock.now = NOON + 60
        r = await client.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 200
        # Admission reserves the estimate (body/4 + max_tokens) until the answer settles.
        assert 0 < int(r.headers["x-ratelimit-remaining-tokens"]) < 100 - 20


class Counting:
    """Counts the requests that reach the gateway (to see SDK retries)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.posts = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            self.posts += 1
        await self.app(scope, receive, send)


@pytest.fixture
def exhausted(make_stack: Callable[..., Stack]) -> Iterator[tuple[str, str, Counting]]:
    stack = make_stack(Limits.of(daily=0.0))
    # 30 s before the reset: a Retry-After the openai SDK would wait for, were it not told
    # (X-Should-Retry: false) that retrying cannot help.
    stack.clock.now = NOON + 12 * 3600 - 30
    counting = Counting(stack.app)
    with run_uvicorn(counting) as base:
        yield base + "/v1", stack.key.key, counting


@pytest.mark.server
def test_openai_sdk_does_not_retry_budget_exhausted(
    exhausted: tuple[str, str, Counting],
) -> None:
    base, key, counting = exhausted
    with (
        openai.OpenAI(api_key=key, base_url=base, max_retries=2) as client,
        pytest.raises(openai.RateLimitError) as info,
    ):
        client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "x"}])
    assert info.value.code == "budget_exhausted"
    assert counting.posts == 1


@pytest.mark.server
def test_auriko_sdk_does_not_retry_budget_exhausted(
    exhausted: tuple[str, str, Counting],
) -> None:
    base, key, counting = exhausted
    with (
        auriko.Client(api_key=key, base_url=base, max_retries=2) as client,
        pytest.raises(auriko.RateLimitError) as info,
    ):
        client.chat.completions.create(model="demo", messages=[{"role": "user", "content": "x"}])
    assert info.value.code == "budget_exhausted"
    assert counting.posts == 1


@pytest.mark.server
def test_httpx_sees_the_budget_headers(exhausted: tuple[str, str, Counting]) -> None:
    base, key, _ = exhausted
    r = httpx.post(
        base + "/chat/completions", json=CHAT, headers={"authorization": f"Bearer {key}"}
    )
    assert r.status_code == 429
    assert r.headers["x-budget-daily-limit"] == "0.00"
    assert r.headers["x-budget-exceeded-period"] == "daily"
    assert r.headers["retry-after"] == "30"
