"""The seven Open Responses compliance checks, with strict schemas for every event and object."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from akgate.adapter import ResponsesAdapter
from akgate.providers import DemoModel
from tests.support.servers import run_uvicorn

from .checks import check_response, check_stream
from .test_sdk_openai import PNG, WEATHER

APP = ResponsesAdapter(DemoModel())
AUTH = {"authorization": "Bearer k"}


def message(role: str, content: str) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": content}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=APP), base_url="http://t/v1", headers=AUTH
    ) as client:
        yield client


async def create(http: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await http.post("/responses", json={"model": "demo", **body})
    assert response.status_code == 200, response.text
    obj = response.json()
    check_response(obj)
    return obj


async def stream(http: httpx.AsyncClient, **body: Any) -> list[dict[str, Any]]:
    events = []
    async with aconnect_sse(
        http, "POST", "/responses", json={"model": "demo", "stream": True, **body}
    ) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        async for sse in source.aiter_sse():
            data = json.loads(sse.data)
            assert sse.event == data["type"]
            events.append(data)
    return events


async def test_basic_response(http: httpx.AsyncClient) -> None:
    obj = await create(http, input=[message("user", "Say hello")])
    assert obj["status"] == "completed"
    assert obj["output"]


async def test_streaming_response(http: httpx.AsyncClient) -> None:
    final = check_stream(await stream(http, input=[message("user", "Say hello")]))
    assert final["status"] == "completed"
    assert final["output"]


async def test_system_prompt(http: httpx.AsyncClient) -> None:
    obj = await create(
        http, input=[message("system", "You are terse."), message("user", "Say hello")]
    )
    assert obj["status"] == "completed"


async def test_tool_calling(http: httpx.AsyncClient) -> None:
    obj = await create(
        http, input=[message("user", "Weather in Paris? Use the tool.")], tools=[WEATHER]
    )
    assert any(o["type"] == "function_call" for o in obj["output"])


async def test_tool_calling_streaming(http: httpx.AsyncClient) -> None:
    events = await stream(
        http, input=[message("user", "Weather in Paris? Use the tool.")], tools=[WEATHER]
    )
    check_stream(events)
    types = [(e["type"], e.get("item", {}).get("type")) for e in events]
    assert ("response.output_item.added", "function_call") in types
    assert ("response.output_item.done", "function_call") in types
    kinds = [e["type"] for e in events]
    assert "response.function_call_arguments.delta" in kinds
    assert "response.function_call_arguments.done" in kinds


async def test_image_input(http: httpx.AsyncClient) -> None:
    obj = await create(
        http,
        input=[
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Describe"},
                    {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
                ],
            }
        ],
    )
    assert obj["status"] == "completed"


async def test_multi_turn(http: httpx.AsyncClient) -> None:
    obj = await create(
        http,
        input=[
            message("user", "My name is Ada."),
            message("assistant", "Hello Ada."),
            message("user", "What is my name?"),
        ],
    )
    assert obj["status"] == "completed"
    assert obj["output"]


async def test_streaming_over_uvicorn_with_done_line() -> None:
    with run_uvicorn(ResponsesAdapter(DemoModel(), send_done=True)) as url:
        async with httpx.AsyncClient(base_url=url + "/v1", headers=AUTH) as client:
            raw = []
            async with client.stream(
                "POST",
                "/responses",
                json={"model": "demo-reasoning", "stream": True, "input": "2+2?"},
            ) as response:
                async for line in response.aiter_lines():
                    raw.append(line)
    datas = [line[6:] for line in raw if line.startswith("data: ")]
    assert datas[-1] == "[DONE]"
    final = check_stream([json.loads(d) for d in datas[:-1]])
    assert final["output"][0]["type"] == "reasoning"
