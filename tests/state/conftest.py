"""A chat-completions app that answers from the history it receives, and stacks around it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import openai
import pytest

from akgate import MemoryKeyStore, gateway
from akgate._asgi import answer_lifespan, read_body, send_json
from akgate._types import Receive, Scope, Send
from akgate.auth import NewKey, new_key_record
from akgate.store import MemoryResponseStore, ResponseStore
from tests.support.servers import run_uvicorn


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class ChatEcho:
    """Answers ``echo: <last user text>`` (or a tool call, or ``done: <tool output>``).

    Model ``reasoner`` adds ``reasoning_content``; models ``slow`` and ``ticks`` stream 200 and
    20 chunks 20 ms apart.
    Every chat request it received is kept in ``requests``.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body["messages"]
        last = messages[-1]
        message: dict[str, Any] = {"role": "assistant"}
        if last["role"] == "tool":
            message["content"] = "done: " + _text(last["content"])
        elif body.get("tools") and last["role"] == "user":
            name = body["tools"][0]["function"]["name"]
            call_id = f"call_{len(self.requests)}"
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": '{"q": 1}'},
                }
            ]
        else:
            user = [m for m in messages if m["role"] == "user"]
            message["content"] = "echo: " + (_text(user[-1]["content"]) if user else "")
        if body.get("model") == "reasoner":
            message["reasoning_content"] = "thinking about " + str(message.get("content"))
        return message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
            return
        body = json.loads(await read_body(scope, receive))
        self.requests.append(body)
        message = self.answer(body)
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        if not body.get("stream"):
            await send_json(
                send,
                200,
                {
                    "id": "chatcmpl-1",
                    "object": "chat.completion",
                    "created": 1,
                    "model": body.get("model"),
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": usage,
                },
            )
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )

        async def event(
            delta: dict[str, Any], finish_reason: str | None = None, **extra: Any
        ) -> None:
            chunk = {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": body.get("model"),
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                **extra,
            }
            data = b"data: " + json.dumps(chunk).encode() + b"\n\n"
            await send({"type": "http.response.body", "body": data, "more_body": True})

        await event({"role": "assistant", "content": ""})
        if message.get("reasoning_content"):
            await event({"reasoning_content": message["reasoning_content"]})
        ticks = {"slow": 200, "ticks": 20}.get(body.get("model") or "")
        if ticks:
            for _ in range(ticks):
                await anyio.sleep(0.02)
                await event({"content": "."})
        elif message.get("content"):
            words = message["content"].split(" ")
            for i, word in enumerate(words):
                await event({"content": word + (" " if i < len(words) - 1 else "")})
        for i, call in enumerate(message.get("tool_calls") or ()):
            await event({"tool_calls": [{"index": i, **call}]})
        await event({}, finish)
        await event({}, None, usage=usage)
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})


MODELS = ["echo", "reasoner", "slow", "ticks"]


def keys() -> tuple[NewKey, NewKey]:
    return (
        new_key_record(name="a", workspace_id="ws_a"),
        new_key_record(name="b", workspace_id="ws_b"),
    )


def stack(app: ChatEcho, store: ResponseStore | str, *key: NewKey, **options: Any) -> Any:
    return gateway(
        app,
        keys=MemoryKeyStore([k.record for k in key]),
        models=MODELS,
        demo=False,
        response_store=store,
        **options,
    )


def sdk(app: Any, key: NewKey) -> openai.AsyncOpenAI:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    return openai.AsyncOpenAI(
        base_url="http://test/v1", api_key=key.key, http_client=http, max_retries=0
    )


@pytest.fixture
def echo() -> ChatEcho:
    return ChatEcho()


class Conn:
    """Clients for a stack: in-process (``ASGITransport``) or over a real uvicorn."""

    def __init__(self, app: Any, base_url: str | None = None) -> None:
        self.app = app
        self.base_url = base_url
        self.opened: list[openai.AsyncOpenAI | httpx.AsyncClient] = []

    def sdk(self, key: NewKey) -> openai.AsyncOpenAI:
        if self.base_url is None:
            client = sdk(self.app, key)
        else:
            client = openai.AsyncOpenAI(
                base_url=self.base_url + "/v1", api_key=key.key, max_retries=0
            )
        self.opened.append(client)
        return client

    def http(self) -> httpx.AsyncClient:
        if self.base_url is None:
            transport = httpx.ASGITransport(app=self.app)
            client = httpx.AsyncClient(transport=transport, base_url="http://test")
        else:
            client = httpx.AsyncClient(base_url=self.base_url)
        self.opened.append(client)
        return client

    async def aclose(self) -> None:
        for client in self.opened:
            await client.close() if isinstance(
                client, openai.AsyncOpenAI
            ) else await client.aclose()


@pytest.fixture(params=["asgi", "uvicorn"])
async def gw(
    request: pytest.FixtureRequest, echo: ChatEcho
) -> AsyncIterator[tuple[Conn, NewKey, NewKey]]:
    """The stack with a memory store and two workspaces' keys, in-process and over uvicorn."""
    a, b = keys()
    app = stack(echo, MemoryResponseStore(), a, b)
    if request.param == "asgi":
        conn = Conn(app)
        yield conn, a, b
        await conn.aclose()
        await app.aclose()
        return
    with run_uvicorn(app) as url:  # lifespan shutdown closes what the stack made
        conn = Conn(app, url)
        yield conn, a, b
        await conn.aclose()
