"""Plain ASGI: ``gateway()`` around any ASGI callable, including one that knows no lifespan."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from akgate.stack import gateway

from .apps import completion


async def bare_app(scope: Any, receive: Any, send: Any) -> None:
    """Handles http only, like many hand-written apps (raises on lifespan)."""
    if scope["type"] != "http":
        raise RuntimeError(f"unsupported scope {scope['type']}")
    import json

    request = json.loads((await receive())["body"])
    body = json.dumps(completion(request["model"], f"seen {scope['path']}")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def test_gateway_wraps_a_bare_asgi_callable(key: str) -> None:
    app = gateway(bare_app, keys=[key], models=["echo"])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://t",
        headers={"authorization": f"Bearer {key}"},
    ) as http:
        response = await http.post("/v1/responses", json={"model": "echo", "input": "hi"})
    # The adapter called the app's chat path with a chat body.
    assert response.json()["output"][0]["content"][0]["text"] == "seen /v1/chat/completions"


async def test_gateway_passes_lifespan_to_the_wrapped_callable_unchanged(key: str) -> None:
    app = gateway(bare_app, keys=[key], models=["echo"])
    with pytest.raises(RuntimeError, match="unsupported scope lifespan"):
        await app({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
