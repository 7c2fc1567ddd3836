"""Conformance with the openai Python SDK, in process (ASGITransport) and over a real uvicorn."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from akgate.adapter import ResponsesAdapter
from akgate.providers.demo import DemoModel
from tests.support.servers import run_uvicorn

from .checks import check_response

APP = ResponsesAdapter(DemoModel())
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


@pytest.fixture
async def client() -> AsyncIterator[openai.AsyncOpenAI]:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=APP), base_url="http://t")
    async with openai.AsyncOpenAI(
        api_key="k", base_url="http://t/v1", http_client=http, max_retries=0
    ) as c:
        yield c


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with run_uvicorn(APP) as url:
        yield url


async def test_create_json(client: openai.AsyncOpenAI) -> None:
    raw = await client.responses.with_raw_response.create(model="demo", input="Say hello")
    response = raw.parse()
    assert response.status == "completed"
    assert response.output_text == "Hello!"
    assert response.usage is not None
    assert response.usage.total_tokens > 0
    check_response(raw.http_response.json())


async def test_create_stream_over_uvicorn(server: str) -> None:
    async with openai.AsyncOpenAI(api_key="k", base_url=server + "/v1", max_retries=0) as c:
        stream = await c.responses.create(model="demo", input="Say hello", stream=True)
        events = [event async for event in stream]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "Hello!"


async def test_stream_helper_get_final_response(client: openai.AsyncOpenAI) -> None:
    async with client.responses.stream(model="demo", input="Say hello") as stream:
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert final.output_text == "".join(deltas)


async def test_parse_with_pydantic_text_format(client: openai.AsyncOpenAI) -> None:
    class City(BaseModel):
        name: str
        population: int

    response = await client.responses.parse(model="demo", input="A city", text_format=City)
    assert isinstance(response.output_parsed, City)


async def test_full_tool_loop(client: openai.AsyncOpenAI) -> None:
    first = await client.responses.create(
        model="demo", input="What is the weather in Paris? Use the tool.", tools=[WEATHER]
    )
    call = next(o for o in first.output if o.type == "function_call")
    assert call.id != call.call_id
    assert call.id.startswith("fc_")
    second = await client.responses.create(
        model="demo",
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "What is the weather in Paris? Use the tool."},
            *[o.model_dump(exclude_none=True) for o in first.output],
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ],
    )
    assert second.status == "completed"
    assert second.output_text
    assert not any(o.type == "function_call" for o in second.output)


async def test_tool_call_streams_with_stream_helper(client: openai.AsyncOpenAI) -> None:
    async with client.responses.stream(
        model="demo", input="Weather in Paris? Use the tool.", tools=[WEATHER]
    ) as stream:
        final = await stream.get_final_response()
    call = next(o for o in final.output if o.type == "function_call")
    assert call.parsed_arguments is not None or call.arguments


async def test_image_input(client: openai.AsyncOpenAI) -> None:
    response = await client.responses.create(
        model="demo",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is in this image?"},
                    {
                        "type": "input_image",
                        "image_url": f"data:image/png;base64,{PNG}",
                        "detail": "auto",
                    },
                ],
            }
        ],
    )
    assert response.status == "completed"


async def test_reasoning_model_gives_a_reasoning_item(client: openai.AsyncOpenAI) -> None:
    response = await client.responses.create(
        model="demo-reasoning", input="What is 2+2?", reasoning={"effort": "low"}
    )
    kinds = [o.type for o in response.output]
    assert kinds[0] == "reasoning"
    assert "message" in kinds
    assert response.reasoning is not None
    assert response.reasoning.effort == "low"


async def test_truncation_is_incomplete(client: openai.AsyncOpenAI) -> None:
    response = await client.responses.create(
        model="demo", input="Tell me a long story please", max_output_tokens=2
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"


async def test_mid_stream_error_raises_in_the_sdk(client: openai.AsyncOpenAI) -> None:
    stream = await client.responses.create(
        model="demo",
        input="Say hello there friend",
        stream=True,
        extra_headers={"x-demo-fault": "midstream=2"},
    )
    seen: list[Any] = []

    async def consume() -> None:
        async for event in stream:
            seen.append(event.type)

    with pytest.raises(openai.APIError):
        await consume()
    assert seen[:2] == ["response.created", "response.in_progress"]


async def test_error_before_first_byte_is_an_http_error(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError):
        await client.responses.create(
            model="demo", input="x", stream=True, extra_headers={"x-demo-fault": "status=429"}
        )
