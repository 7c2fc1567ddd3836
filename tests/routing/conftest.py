from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from akgate.routing import Catalog, Provider, Routing
from tests.routing.scripted import Scripted

TWO_PROVIDERS = {
    "models": {
        "alpha": {
            "aliases": ["alpha-latest"],
            "providers": [
                {"name": "cheap", "model_id": "alpha-cheap", "input_price": 1.0,
                 "output_price": 2.0, "cached_input_price": 0.1, "data_policy": "none"},
                {"name": "pricey", "model_id": "alpha-pricey", "input_price": 3.0,
                 "output_price": 6.0, "data_policy": "zdr"},
            ],
        },
        "beta": {
            "providers": [
                {"name": "pricey", "model_id": "beta-1", "input_price": 0.5,
                 "output_price": 0.5, "data_policy": "zdr",
                 "capabilities": {"reasoning": True,
                                  "reasoning_efforts": ["low", "medium", "high"]}},
            ],
        },
        "oracle": {
            "providers": [
                {"name": "pricey", "model_id": "oracle-pro", "input_price": 10.0,
                 "output_price": 40.0, "endpoints": ["responses"]},
            ],
        },
    }
}  # fmt: skip


def build(
    providers: dict[str, Scripted],
    catalog: dict[str, Any] | None = None,
    **options: Any,
) -> Routing:
    """A Routing stack over scripted providers (the wrapped app is never routed to)."""

    async def bare(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return Routing(
        bare,
        catalog=Catalog.from_dict(catalog or TWO_PROVIDERS),
        providers=[
            Provider(name, app, endpoints=frozenset({"chat_completions", "responses"}))
            for name, app in providers.items()
        ],
        app_provider=None,
        **options,
    )


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
def make() -> Callable[..., tuple[Routing, dict[str, Scripted]]]:
    def factory(
        cheap: str = "ok", pricey: str = "ok", **options: Any
    ) -> tuple[Routing, dict[str, Scripted]]:
        providers = {"cheap": Scripted("cheap", cheap), "pricey": Scripted("pricey", pricey)}
        return build(providers, **options), providers

    return factory


#: A chat completions request's scope, for tests that drive the app with their own receive/send.
CHAT_SCOPE: dict[str, Any] = {
    "type": "http",
    "method": "POST",
    "path": "/v1/chat/completions",
    "headers": [(b"content-type", b"application/json")],
    "query_string": b"",
}


async def stream_then_disconnect(app: Any, payload: dict[str, Any]) -> None:
    """Send ``payload`` as a streamed chat request; the client goes away after the first body
    chunk it receives (the call must then return within 5 s)."""
    body = json.dumps({**payload, "stream": True}).encode()
    first_chunk = anyio.Event()
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body}
        await first_chunk.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            first_chunk.set()

    with anyio.fail_after(5):
        await app(dict(CHAT_SCOPE), receive, send)
