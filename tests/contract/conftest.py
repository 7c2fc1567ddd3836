"""Fixtures for the audit's exact requests: the served stack, and a gateway over a recording app."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from akgate._serve import ServeConfig, build_app
from akgate.auth import MemoryKeyStore, ensure_demo_key
from akgate.auth._keys import generate_key
from akgate.stack import gateway


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AKGATE_HOME", str(tmp_path))
    monkeypatch.delenv("AKGATE_API_KEYS", raising=False)


@asynccontextmanager
async def served(**config: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``akgate serve``'s stack (demo models, no token delay), key included."""
    store = MemoryKeyStore()
    key = await ensure_demo_key(store)
    app = build_app(ServeConfig(token_delay_ms=0, **config), keys=store)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://gateway",
        headers={"authorization": f"Bearer {key}"},
    ) as client:
        yield client


@dataclass
class ChatApp:
    """A raw ASGI chat-completions app that records each body and answers as scripted."""

    service_tier: str | None = None
    bodies: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        body = json.loads(raw)
        self.bodies.append(body)
        base: dict[str, Any] = {"id": "chatcmpl-1", "created": 1, "model": body["model"]}
        if self.service_tier is not None:
            base["service_tier"] = self.service_tier
        usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
        if not body.get("stream"):
            answer = {
                **base,
                "object": "chat.completion",
                "usage": usage,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "ok"},
                        "finish_reason": "stop",
                    }
                ],
            }
            await _send(send, "application/json", json.dumps(answer).encode())
            return
        chunk = {**base, "object": "chat.completion.chunk"}
        frames = [
            {
                **chunk,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": "ok"},
                        "finish_reason": None,
                    }
                ],
            },
            {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {**chunk, "choices": [], "usage": usage},
        ]
        data = b"".join(b"data: " + json.dumps(f).encode() + b"\n\n" for f in frames)
        await _send(send, "text/event-stream", data + b"data: [DONE]\n\n")


async def _send(send: Any, content_type: str, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", content_type.encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def over_app(
    app: ChatApp, models: Any = ("m",), **options: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``gateway(app, models=["m"])`` (no demo models), key included."""
    key = generate_key("live")[0]
    stack = gateway(app, keys=[key], models=models, demo=False, **options)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=stack),
        base_url="http://gateway",
        headers={"authorization": f"Bearer {key}"},
    ) as client:
        yield client
