"""Streams: the final usage + routing_metadata chunk, the Responses terminal event."""

from __future__ import annotations

import json
from typing import Any

import auriko
import httpx
from auriko.route_types import GatewayOptions, RoutingOptions
from httpx_sse import aconnect_sse
from openai import AsyncOpenAI

from tests.routing.conftest import build, client
from tests.routing.scripted import Scripted

MSG = [{"role": "user", "content": "hi"}]
BODY = {"model": "alpha", "messages": MSG, "stream": True}


async def events(app: Any, body: dict[str, Any], path: str = "/v1/chat/completions") -> list[Any]:
    async with client(app) as c, aconnect_sse(c, "POST", path, json=body) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        assert "content-length" not in source.response.headers
        return [e async for e in source.aiter_sse()]


async def test_final_chunk_has_empty_choices_usage_and_metadata(make: Any) -> None:
    app, _ = make()
    data = [e.data for e in await events(app, BODY)]
    assert data[-1] == "[DONE]"
    final = json.loads(data[-2])
    assert final["choices"] == []
    assert final["usage"]["completion_tokens"] == 5
    assert final["routing_metadata"]["provider"] == "cheap"
    assert final["object"] == "chat.completion.chunk"


async def test_metadata_only_on_final_chunk(make: Any) -> None:
    app, _ = make()
    data = [e.data for e in await events(app, BODY)]
    assert sum("routing_metadata" in d for d in data) == 1


async def test_include_usage_is_forced(make: Any) -> None:
    app, providers = make()
    body = {**BODY, "stream_options": {"include_usage": False}}
    await events(app, body)
    assert providers["cheap"].calls[0]["stream_options"] == {"include_usage": True}


async def test_ttft_and_throughput_measured_on_streams(make: Any) -> None:
    ticks = iter(range(1000))
    app, _ = make(clock=lambda: next(ticks) * 0.01)
    data = [e.data for e in await events(app, BODY)]
    meta = json.loads(data[-2])["routing_metadata"]
    assert meta["ttft_ms"] > 0
    assert meta["throughput_tps"] > 0
    assert meta["cost"]["usd"] == 0.00002


async def test_stream_tokens_pass_through_unchanged(make: Any) -> None:
    app, providers = make()
    providers["cheap"].text = "one two three"
    data = [e.data for e in await events(app, BODY)]
    words = [
        json.loads(d)["choices"][0]["delta"].get("content")
        for d in data[:-2]
        if json.loads(d)["choices"]
    ]
    assert "".join(w or "" for w in words) == "onetwothree"


async def test_crlf_streams_are_rewritten_too(make: Any) -> None:
    app, providers = make()
    providers["cheap"].crlf = True
    data = [e.data for e in await events(app, BODY)]
    assert data[-1] == "[DONE]"
    assert json.loads(data[-2])["routing_metadata"]["provider"] == "cheap"


async def test_usage_on_content_chunk_still_ends_with_final_chunk() -> None:
    class UsageOnLastChunk(Scripted):
        async def _respond(self, send: Any, receive: Any, model: str, *args: Any) -> None:
            chunk = {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
                "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            }
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")],
                }
            )
            body = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
            await send({"type": "http.response.body", "body": body})

    catalog = {"models": {"m": {"providers": [{"name": "p", "input_price": 1, "output_price": 1}]}}}
    app = build({"p": UsageOnLastChunk("p")}, catalog)
    data = [json.loads(e.data) for e in (await events(app, {**BODY, "model": "m"}))[:-1]]
    assert data[0]["usage"] is None
    assert data[-1]["choices"] == []
    assert data[-1]["usage"]["total_tokens"] == 4
    assert data[-1]["routing_metadata"]["cost"]["usd"] == 0.000004


async def test_events_split_across_chunks() -> None:
    class Dribble(Scripted):
        async def _respond(self, send: Any, receive: Any, model: str, *args: Any) -> None:
            from tests.routing.scripted import chat_chunks

            raw = b"".join(chat_chunks(model, "a b", (1, 2, 0)))
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")],
                }
            )
            for i in range(0, len(raw), 7):
                await send(
                    {"type": "http.response.body", "body": raw[i : i + 7], "more_body": True}
                )
            await send({"type": "http.response.body", "body": b""})

    catalog = {"models": {"m": {"providers": [{"name": "p", "input_price": 1, "output_price": 1}]}}}
    app = build({"p": Dribble("p")}, catalog)
    data = [e.data for e in await events(app, {**BODY, "model": "m"})]
    assert data[-1] == "[DONE]"
    assert json.loads(data[-2])["usage"]["completion_tokens"] == 2


async def test_responses_stream_terminal_event_carries_metadata(make: Any) -> None:
    app, _ = make()
    body = {"model": "oracle", "input": "hi", "stream": True}
    received = await events(app, body, "/v1/responses")
    assert [e.event for e in received][-1] == "response.completed"
    created = json.loads(received[0].data)
    assert "routing_metadata" not in created["response"]
    terminal = json.loads(received[-1].data)
    assert terminal["response"]["routing_metadata"]["provider_model_id"] == "oracle-pro"
    assert "ttft_ms" in terminal["response"]["routing_metadata"]
    assert not any(e.data == "[DONE]" for e in received)


async def test_openai_sdk_stream_and_auriko_parser(make: Any) -> None:
    app, _ = make()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    sdk = AsyncOpenAI(api_key="ak_test", base_url="http://test/v1", http_client=http)
    stream = await sdk.chat.completions.create(model="alpha", messages=MSG, stream=True)
    chunks = [chunk async for chunk in stream]
    meta = auriko.parse_routing_metadata(chunks[-1])
    assert meta is not None
    assert meta.provider == "cheap"
    assert chunks[-1].usage is not None


async def test_openai_sdk_responses_stream_metadata(make: Any) -> None:
    app, _ = make()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    sdk = AsyncOpenAI(api_key="ak_test", base_url="http://test/v1", http_client=http)
    stream = await sdk.responses.create(model="oracle", input="hi", stream=True)
    last = [event async for event in stream][-1]
    assert last.type == "response.completed"
    meta = auriko.parse_routing_metadata(last.response)
    assert meta is not None
    assert meta.model_canonical == "oracle"


async def test_auriko_sdk_stream_captures_metadata(make: Any) -> None:
    app, _ = make()
    sdk = auriko.AsyncClient(api_key="ak_test_x", base_url="http://test/v1")
    sdk._httpx = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=sdk.base_url, headers=sdk._default_headers
    )
    stream = await sdk.chat.completions.create(
        messages=MSG,
        stream=True,
        gateway=GatewayOptions(models=["alpha", "beta"], routing=RoutingOptions(optimize="cost")),
    )
    async for _ in stream:
        pass
    assert stream.routing_metadata is not None
    assert stream.routing_metadata.model_canonical == "beta"
    assert stream.routing_metadata.routing_strategy == "cost"
