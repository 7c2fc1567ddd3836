"""Shared helpers for the auth tests: a tiny inner app, stacks and clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from akgate._asgi import read_body, send_json
from akgate._types import Receive, Scope, Send
from akgate.auth import APIKeyAuth, MemoryKeyStore, MemoryRateLimiter, NewKey, new_key_record
from akgate.context import get_context

NOW = 1_700_000_030.0  # mid-window for 60 s windows


class Clock:
    """An injectable epoch clock."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def inner_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers any path with a fixed chat completion, echoing what it saw."""
    body = await read_body(scope, receive)
    ctx = get_context(scope)
    identity = ctx.identity if ctx else None
    await send_json(
        send,
        200,
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": "demo",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "hello"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            "seen": {
                "path": scope["path"],
                "key_id": identity.key_id if identity else None,
                "environment": identity.environment if identity else None,
                "body": body.decode("utf-8", "replace"),
            },
        },
    )


def make_key(**options: Any) -> NewKey:
    return new_key_record(name=options.pop("name", "test"), now=NOW - 100, **options)


def auth_app(*keys: NewKey, **options: Any) -> APIKeyAuth:
    options.setdefault("clock", Clock())
    options.setdefault("limiter", MemoryRateLimiter(clock=options["clock"]))
    store = options.pop("store", None) or MemoryKeyStore([k.record for k in keys])
    return APIKeyAuth(inner_app, store=store, **options)


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
def live_key() -> NewKey:
    return make_key()


@pytest.fixture
async def client(live_key: NewKey) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(auth_app(live_key)) as c:
        yield c


CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
