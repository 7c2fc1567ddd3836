"""An upstream that speaks Anthropic Messages, behind ``UpstreamProvider(forward=...)``: its
stream reaches the client untouched (``message_stop`` ends it, no ``[DONE]``), and a stream it
cuts short ends with Anthropic's ``error`` event."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from akgate._types import Receive, Scope, Send
from akgate.providers import UpstreamProvider
from akgate.routing import Provider, Routing
from tests.adapter.scripted import call
from tests.support.servers import run_uvicorn

from .checks import check_stream
from .test_routing import native_events

BODY = {
    "model": "claude-ish",
    "max_tokens": 20,
    "stream": True,
    "messages": [{"role": "user", "content": "hi"}],
}
CATALOG = {
    "models": {
        "claude-ish": {
            "providers": [
                {
                    "name": "anthropic",
                    "input_price": 1,
                    "output_price": 2,
                    "endpoints": ["messages"],
                }
            ]
        }
    }
}
SEEN: list[dict[str, Any]] = []


async def fake_anthropic(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    request = json.loads(body)
    SEEN.append({"path": scope["path"], "body": request})
    if scope["path"].endswith("/count_tokens"):
        data = b'{"input_tokens": 7}'
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream")],
        }
    )
    for frame in native_events(cut=request["messages"][0]["content"] == "cut"):
        await send({"type": "http.response.body", "body": frame, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with run_uvicorn(fake_anthropic) as url:
        yield url


@pytest.fixture
async def gateway_app(upstream: str) -> AsyncIterator[Routing]:
    app = UpstreamProvider(upstream + "/v1", forward=("messages", "messages.count_tokens"))
    provider = Provider("anthropic", app, endpoints=frozenset({"messages"}))
    yield Routing(app, catalog=CATALOG, app_provider=provider)
    await app.aclose()


@pytest.mark.server
async def test_a_native_stream_passes_untouched_and_ends_at_message_stop(
    gateway_app: Routing,
) -> None:
    result = await call(gateway_app, BODY, path="/v1/messages")
    message = check_stream(result.events)
    assert message["content"] == [{"type": "text", "text": "Hi"}]
    assert SEEN[-1] == {"path": "/v1/messages", "body": BODY}
    delta = next(e for e in result.events if e["type"] == "message_delta")
    assert delta["routing_metadata"]["provider"] == "anthropic"


@pytest.mark.server
async def test_a_native_stream_cut_short_ends_with_an_anthropic_error_event(
    gateway_app: Routing,
) -> None:
    cut = {**BODY, "messages": [{"role": "user", "content": "cut"}]}
    result = await call(gateway_app, cut, path="/v1/messages")
    assert b"[DONE]" not in result.body
    assert check_stream(result.events)["error"]["type"] == "api_error"


@pytest.mark.server
async def test_count_tokens_is_the_upstreams_own(gateway_app: Routing) -> None:
    request = {"model": "claude-ish", "messages": BODY["messages"]}
    result = await call(gateway_app, request, path="/v1/messages/count_tokens")
    assert result.json["input_tokens"] == 7
