from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from pydantic_core import from_json, to_json

from akgate._types import Receive, Scope, Send
from akgate.context import RequestContext, get_context
from tests.support.asgi import read_body


@dataclass
class Seen:
    """What the inner app received."""

    calls: int = 0
    body: bytes = b""
    scope: dict[str, Any] = field(default_factory=dict)
    ctx: RequestContext | None = None

    @property
    def json(self) -> Any:
        return from_json(self.body)

    def header(self, name: bytes) -> bytes | None:
        return next((v for k, v in self.scope["headers"] if k == name), None)


class EchoApp:
    """An inner app that records the request and answers 200 with a small JSON body."""

    def __init__(self) -> None:
        self.seen = Seen()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        self.seen.calls += 1
        self.seen.body = body
        self.seen.scope = dict(scope)
        self.seen.ctx = get_context(scope)
        body = to_json({"ok": True})
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def inner() -> EchoApp:
    return EchoApp()


@pytest.fixture
async def client_for() -> AsyncIterator[Any]:
    clients: list[httpx.AsyncClient] = []

    def make(app: Any, **kwargs: Any) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, **kwargs), base_url="http://test"
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
