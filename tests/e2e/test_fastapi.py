"""``app.add_middleware(akgate.Gateway)`` on a FastAPI app that serves chat completions."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

import akgate
from akgate.auth._keys import generate_key
from tests.support.servers import run_uvicorn

from .conftest import assert_envelope

CHAT = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}


def make_app(key: str) -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"ok": "yes"}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = await request.json()
        text = "You said: " + str(body["messages"][-1]["content"])
        usage = {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body["model"],
                    "usage": usage,
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": text},
                        }
                    ],
                }
            )

        async def events() -> AsyncIterator[bytes]:
            for i, word in enumerate(text.split(" ")):
                delta = {"role": "assistant", "content": ("" if i == 0 else " ") + word}
                chunk = {
                    "id": "chatcmpl-1",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": body["model"],
                    "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                }
                yield b"data: " + json.dumps(chunk).encode() + b"\n\n"
            last = {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": body["model"],
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            }
            yield b"data: " + json.dumps(last).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    app.add_middleware(akgate.Gateway, keys=[key], models=["echo"])
    return app


@pytest.fixture
def key() -> str:
    return generate_key("live")[0]


@pytest.fixture
async def http(key: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(key))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"authorization": f"Bearer {key}"}
    ) as client:
        yield client


async def test_app_route_outside_v1_is_untouched(http: httpx.AsyncClient) -> None:
    response = await http.get("/health", headers={"authorization": ""})
    assert response.json() == {"ok": "yes"}


async def test_app_404_below_v1_carries_a_request_id(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/nothing")
    assert response.status_code == 404
    assert response.headers.get("x-request-id")


async def test_app_405_on_its_chat_route_is_an_envelope(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/chat/completions")
    assert_envelope(response, 405, "method_not_allowed")


async def test_401_carries_a_request_id(http: httpx.AsyncClient) -> None:
    response = await http.post("/v1/chat/completions", json=CHAT, headers={"authorization": ""})
    assert_envelope(response, 401, "invalid_api_key")


async def test_app_chat_json_and_stream_through_the_stack(http: httpx.AsyncClient) -> None:
    response = await http.post("/v1/chat/completions", json=CHAT)
    assert response.json()["choices"][0]["message"]["content"] == "You said: hi"
    assert response.json()["routing_metadata"]["provider"] == "app"
    response = await http.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert response.text.endswith("data: [DONE]\n\n")
    assert '"routing_metadata"' in response.text


async def test_app_chat_with_a_trailing_slash_reaches_the_app_route(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post("/v1/chat/completions/", json=CHAT)
    assert response.status_code == 200, response.text
    assert response.json()["routing_metadata"]["provider"] == "app"


async def test_responses_over_the_app_with_the_openai_sdk(key: str) -> None:
    transport = httpx.ASGITransport(app=make_app(key))
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://t") as raw,
        openai.AsyncOpenAI(
            base_url="http://t/v1", api_key=key, http_client=raw, max_retries=0
        ) as sdk,
    ):
        response = await sdk.responses.create(model="echo", input="hi")
        assert response.output_text == "You said: hi"
        async with sdk.responses.stream(model="echo", input="hi") as stream:
            final = await stream.get_final_response()
        assert final.output_text == "You said: hi"


@pytest.fixture
def fastapi_server(key: str) -> Iterator[str]:
    with run_uvicorn(make_app(key)) as base:
        yield base


@pytest.mark.server
def test_app_stream_over_uvicorn_with_the_openai_sdk(fastapi_server: str, key: str) -> None:
    with openai.OpenAI(base_url=fastapi_server + "/v1", api_key=key, max_retries=0) as sdk:
        stream = sdk.chat.completions.create(
            model="echo", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "You said: hi"
