"""What coding agents send on /v1/responses, turn after turn, through ``akgate serve``'s stack.

A Codex-shaped request (over 40 KB: dozens of long function tools, a namespace, a custom tool and
a hosted tool; developer messages; ``reasoning.summary``; ``include`` of encrypted reasoning;
``store: false``; ``client_metadata``; ``prompt_cache_key``; ``text.verbosity``;
``parallel_tool_calls``) is accepted on every turn of a tool loop, JSON and streamed, with the
replayed reasoning items carrying ``encrypted_content`` as null or as an opaque blob.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
from httpx_sse import aconnect_sse

from akgate._serve import ServeConfig, build_app
from akgate.auth import MemoryKeyStore, ensure_demo_key


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    store = MemoryKeyStore()
    key = await ensure_demo_key(store)
    app = build_app(ServeConfig(token_delay_ms=0), keys=store)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://t",
        headers={"authorization": f"Bearer {key}"},
        timeout=20,
    ) as http:
        yield http


def function(name: str) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "description": f"Tool {name}. " + "It does one careful thing, documented at length. " * 14,
        "strict": False,
        "parameters": {
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "Where to act."},
                "limit": {"type": "integer", "description": "How much."},
            },
            "required": ["path"],
            "additionalProperties": False,
        },
    }


EXEC = {
    "type": "function",
    "name": "exec_command",
    "description": "Runs a command.",
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {"cmd": {"type": "string"}, "workdir": {"type": "string"}},
        "required": ["cmd"],
    },
}
TOOLS = [
    EXEC,
    *(function(f"tool_{i}") for i in range(50)),
    {
        "type": "namespace",
        "name": "multi_agent_v1",
        "description": "Tools for sub-agents.",
        "tools": [function("spawn_agent"), function("close_agent")],
    },
    {"type": "custom", "name": "apply_patch", "description": "Patch files.",
     "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
    {"type": "web_search", "external_web_access": False},
]  # fmt: skip
DEVELOPER = [
    {"type": "message", "role": "developer",
     "content": [{"type": "input_text", "text": "You are a coding agent. " * 40}]},
    {"type": "message", "role": "user",
     "content": [{"type": "input_text", "text": "<environment_context>/w</environment_context>"}]},
]  # fmt: skip


def request(input_items: list[dict[str, Any]], *, stream: bool) -> dict[str, Any]:
    return {
        "model": "demo-reasoning",
        "input": [*DEVELOPER, *input_items],
        "tools": TOOLS,
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "stream": stream,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "thread-0001",
        "text": {"verbosity": "low"},
        "client_metadata": {"thread_id": "thread-0001", "turn_id": "turn-1"},
    }


async def send(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    """The final Response object, from the JSON answer or the stream's terminal event."""
    if not body["stream"]:
        reply = await http.post("/v1/responses", json=body)
        assert reply.status_code == 200, reply.text
        return reply.json()  # type: ignore[no-any-return]
    final: dict[str, Any] | None = None
    async with aconnect_sse(http, "POST", "/v1/responses", json=body) as source:
        assert source.response.status_code == 200
        async for event in source.aiter_sse():
            data = json.loads(event.data)
            assert data["type"] != "error", data
            if data["type"] in ("response.completed", "response.incomplete"):
                final = data["response"]
    assert final is not None
    return final


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("encrypted", [None, "gAAAAABopaque-blob=="])
async def test_a_codex_shaped_tool_loop_is_accepted_on_every_turn(
    client: httpx.AsyncClient, stream: bool, encrypted: str | None
) -> None:
    text = 'Use the exec_command tool to run "ls".'
    ask = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    first_body = request([ask], stream=stream)
    assert len(json.dumps(first_body)) > 40_000
    first = await send(client, first_body)
    reasoning, call = first["output"]
    assert reasoning["type"] == "reasoning"
    assert (call["type"], call["name"], json.loads(call["arguments"])) == (
        "function_call",
        "exec_command",
        {"cmd": "ls"},
    )
    # the hosted tool was dropped for the chat-only demo (akgate serve is lenient), and said so
    warnings = {(w["type"], w["code"]) for w in first["routing_metadata"]["warnings"]}
    assert ("unsupported_feature", f"tools[{len(TOOLS) - 1}]") in warnings

    # Turn 2: Codex replays everything, reasoning without ids and with its ciphertext (or null).
    replayed_reasoning = {"type": "reasoning", "summary": reasoning["summary"],
                          "encrypted_content": encrypted}  # fmt: skip
    second_items = [
        ask,
        replayed_reasoning,
        {"type": "function_call", "call_id": call["call_id"], "name": "exec_command",
         "arguments": call["arguments"]},
        {"type": "function_call_output", "call_id": call["call_id"], "output": "README.md\n"},
    ]  # fmt: skip
    second = await send(client, request(second_items, stream=stream))
    assert [item["type"] for item in second["output"]] == ["reasoning", "message"]
    assert second["output_text"] == "The tool results are in. exec_command returned: README.md\n"

    # Turn 3: a new user message after the finished loop.
    third_items = [
        *second_items,
        {"type": "reasoning", "summary": [], "encrypted_content": encrypted},
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": second["output_text"]}]},
        {"type": "message", "role": "user",
         "content": [{"type": "input_text", "text": "Reply with exactly: done"}]},
    ]  # fmt: skip
    third = await send(client, request(third_items, stream=stream))
    assert third["output_text"] == "done"
    # the same prompt_cache_key across turns: the shared prefix is reported as cached
    assert third["usage"]["input_tokens_details"]["cached_tokens"] > 0


async def test_concurrent_agent_turns(client: httpx.AsyncClient) -> None:
    results: list[str] = []

    async def turn(i: int) -> None:
        item = {"role": "user", "content": f"Reply with exactly: turn {i}"}
        response = await send(client, request([item], stream=i % 2 == 0))
        results.append(response["output_text"])

    async with anyio.create_task_group() as group:
        for i in range(6):
            group.start_soon(turn, i)
    assert sorted(results) == [f"turn {i}" for i in range(6)]
