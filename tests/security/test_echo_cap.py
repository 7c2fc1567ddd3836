"""A valid request just under the body cap whose answer echoes it is served, never a 502.

On /v1/responses, /v1/messages and from an upstream alike."""

from __future__ import annotations

import json

import httpx
import pytest

from akgate._asgi import DEFAULT_MAX_BODY_SIZE
from akgate._serve import ServeConfig, build_app
from akgate._types import Receive, Scope, Send
from akgate.auth import MemoryKeyStore, ensure_demo_key
from akgate.messages import MessagesAdapter
from akgate.providers import UpstreamProvider
from tests.support.raw import call_raw


async def test_responses_echo_of_a_request_just_under_the_cap_is_served() -> None:
    store = MemoryKeyStore()
    key = await ensure_demo_key(store)
    app = build_app(ServeConfig(token_delay_ms=0), keys=store)
    head = json.dumps({"model": "demo", "input": "hi", "instructions": ""}).encode()
    # instructions fill the body up to 48 bytes under the cap; the answer echoes them.
    filler = DEFAULT_MAX_BODY_SIZE - len(head) - 48
    body = json.dumps({"model": "demo", "input": "hi", "instructions": "y" * filler}).encode()
    assert DEFAULT_MAX_BODY_SIZE - 100 < len(body) <= DEFAULT_MAX_BODY_SIZE
    headers = [("authorization", f"Bearer {key}"), ("content-type", "application/json")]
    response = await call_raw(app, "POST", "/v1/responses", headers=headers, body=body)
    assert response.status == 200, response.body[:300]
    answer = response.json()
    assert len(answer["instructions"]) == filler
    assert len(response.body) > DEFAULT_MAX_BODY_SIZE  # over the old 32 MiB answer cap


@pytest.mark.parametrize("echoes", [1, 2])
async def test_upstream_answer_echoing_the_request_is_not_cut(echoes: int) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=request.content * echoes + b" " * 200)

    client = httpx.AsyncClient(transport=httpx.MockTransport(echo))
    provider = UpstreamProvider("http://up/v1", client=client, max_response_size=1000)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 900}]})
    response = await call_raw(
        provider,
        "POST",
        "/v1/chat/completions",
        headers=[("content-type", "application/json")],
        body=body.encode(),
    )
    assert response.status == 200, response.body
    assert len(response.body) == len(body) * echoes + 200


async def test_messages_answer_echoing_a_request_just_under_the_cap_is_served() -> None:
    """A chat route that repeats its prompt: the held answer is over 32 MiB, the request is not."""

    async def echo_chat(scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        prompt = json.loads(body)["messages"][-1]["content"]
        answer = {
            "id": "c",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": prompt},
                    "finish_reason": "stop",
                }
            ],
        }
        data = json.dumps(answer).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    head = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": ""}]}
    filler = DEFAULT_MAX_BODY_SIZE - len(json.dumps(head)) - 48
    head["messages"][0]["content"] = "y" * filler
    body = json.dumps(head).encode()
    assert DEFAULT_MAX_BODY_SIZE - 100 < len(body) <= DEFAULT_MAX_BODY_SIZE
    headers = [("content-type", "application/json")]
    app = MessagesAdapter(echo_chat)
    response = await call_raw(app, "POST", "/v1/messages", headers=headers, body=body)
    assert response.status == 200, response.body[:300]
    assert len(response.json()["content"][0]["text"]) == filler
    assert len(response.body) > DEFAULT_MAX_BODY_SIZE  # over the old fixed 32 MiB answer cap
