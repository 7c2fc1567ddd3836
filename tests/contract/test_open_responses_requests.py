"""The Open Responses compliance suite's requests (the ten that need no WebSocket mode and no
compaction endpoint), written here in the same shape, over ``akgate serve``'s stack with every
demo model: each answer is a valid ``ResponseResource`` (every stream event too) and says what a
model following the prompt would say.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from tests.adapter.checks import check_response, check_stream

from .conftest import served
from .files import REPORT, REPORT_TITLE, data_url, png

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a location",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string", "description": "City and state"}},
        "required": ["location"],
    },
}
MODELS = ["demo", "demo-reasoning", "demo-responses"]


def msg(role: str, content: Any) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": content}


def text_of(response: dict[str, Any]) -> str:
    return "".join(
        part["text"]
        for item in response["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )


async def create(client: httpx.AsyncClient, model: str, **body: Any) -> dict[str, Any]:
    r = await client.post("/v1/responses", json={"model": model, **body})
    assert r.status_code == 200, r.text
    obj: dict[str, Any] = r.json()
    check_response(obj)
    assert obj["status"] == "completed"
    assert obj["output"]
    return obj


async def stream(client: httpx.AsyncClient, model: str, **body: Any) -> list[dict[str, Any]]:
    payload = {"model": model, "stream": True, **body}
    async with aconnect_sse(client, "POST", "/v1/responses", json=payload) as source:
        assert source.response.status_code == 200
        events = [json.loads(e.data) async for e in source.aiter_sse()]
    check_stream(events)
    return events


@pytest.mark.parametrize("model", MODELS)
async def test_the_suites_requests_get_valid_answers_that_follow_the_prompt(model: str) -> None:
    async with served() as client:
        basic = await create(client, model, input=[msg("user", "Say hello in exactly 3 words.")])
        assert text_of(basic) == "Hello dear friend!"

        events = await stream(client, model, input=[msg("user", "Count from 1 to 5.")])
        assert events[-1]["type"] == "response.completed"
        assert text_of(events[-1]["response"]) == "1, 2, 3, 4, 5"

        pirate = await create(
            client,
            model,
            input=[
                msg("system", "You are a pirate. Always respond in pirate speak."),
                msg("user", "Say hello."),
            ],
        )
        assert text_of(pirate) == "Arr! Ahoy!"

        weather = [msg("user", "What's the weather like in San Francisco?")]
        called = await create(client, model, input=weather, tools=[WEATHER])
        calls = [i for i in called["output"] if i["type"] == "function_call"]
        assert [json.loads(c["arguments"]) for c in calls] == [{"location": "San Francisco"}]
        events = await stream(client, model, input=weather, tools=[WEATHER])
        kinds = [e["type"] for e in events]
        assert "response.function_call_arguments.delta" in kinds
        assert "response.function_call_arguments.done" in kinds

        image = [
            {
                "type": "input_text",
                "text": "What do you see in this image? Answer in one sentence.",
            },
            {"type": "input_image", "image_url": data_url(png(32, 32), "image/png")},
        ]
        seen = await create(client, model, input=[msg("user", image)])
        assert text_of(seen).startswith("I see 1 image: a PNG image, 32x32 pixels")

        file = [
            {
                "type": "input_text",
                "text": "Read the attached file and answer with its title only.",
            },
            {"type": "input_file", "filename": "report.pdf", "file_data": data_url(REPORT)},
        ]
        read = await create(client, model, input=[msg("user", file)])
        assert text_of(read) == REPORT_TITLE

        turns = [
            msg("user", "My name is Alice."),
            msg("assistant", "Hello Alice! Nice to meet you. How can I help you today?"),
            msg("user", "What is my name?"),
        ]
        assert text_of(await create(client, model, input=turns)) == "Alice"

        first = await create(
            client, model, input="Remember this code word: papaya. Reply with only OK."
        )
        assert text_of(first) == "OK"
        second = await create(
            client,
            model,
            previous_response_id=first["id"],
            input="What code word did I ask you to remember?",
        )
        assert text_of(second) == "papaya"

        ask = await create(
            client,
            model,
            input="Use the weather tool to get the temperature in San Francisco.",
            tools=[WEATHER],
            tool_choice={"type": "function", "name": "get_weather"},
        )
        call = next(i for i in ask["output"] if i["type"] == "function_call")
        output = {
            "type": "function_call_output",
            "call_id": call["call_id"],
            "output": "64 degrees and clear",
        }
        done = await create(client, model, previous_response_id=ask["id"], input=[output])
        assert "64 degrees and clear" in text_of(done)
