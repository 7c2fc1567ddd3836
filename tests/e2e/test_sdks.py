"""The real openai and auriko SDKs against the served stack over a real uvicorn."""

from __future__ import annotations

import json
from collections.abc import Iterator

import auriko
import openai
import pytest
from auriko.route_types import GatewayOptions, RoutingOptions
from pydantic import BaseModel

pytestmark = pytest.mark.server

TEXT = 'Hello! I am the akgate demo model. You said: "hi"'
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
CHAT_WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": WEATHER["parameters"]},
}


class City(BaseModel):
    name: str
    population: int


@pytest.fixture
def client(served: tuple[str, str]) -> Iterator[openai.OpenAI]:
    base, key = served
    with openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def aclient(served: tuple[str, str]) -> Iterator[auriko.Client]:
    base, key = served
    with auriko.Client(api_key=key, base_url=base + "/v1", max_retries=0) as sdk:
        yield sdk


def test_responses_stream_helper_gives_the_final_response(client: openai.OpenAI) -> None:
    with client.responses.stream(model="demo-reasoning", input="hi") as stream:
        types = [event.type for event in stream]
        final = stream.get_final_response()
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    assert final.output_text == TEXT
    assert final.model_extra is not None
    assert final.model_extra["routing_metadata"]["provider"] == "demo"


def test_responses_tool_loop_through_the_stack(client: openai.OpenAI) -> None:
    prompt = "What is the weather in Paris? Use get_weather."
    first = client.responses.create(model="demo", input=prompt, tools=[WEATHER])  # type: ignore[list-item]
    call = first.output[0]
    assert call.type == "function_call"
    assert call.name == "get_weather"
    assert "city" in json.loads(call.arguments)
    second = client.responses.create(
        model="demo",
        tools=[WEATHER],  # type: ignore[list-item]
        input=[
            {"role": "user", "content": prompt},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ],
    )
    assert "sunny" in second.output_text


def test_responses_stream_with_a_tool_call(client: openai.OpenAI) -> None:
    with client.responses.stream(
        model="demo",
        input="Weather? Use get_weather.",
        tools=[WEATHER],  # type: ignore[list-item]
    ) as stream:
        final = stream.get_final_response()
    assert final.output[0].type == "function_call"


def test_responses_parse_with_a_pydantic_model(client: openai.OpenAI) -> None:
    response = client.responses.parse(model="demo", input="A city", text_format=City)
    assert isinstance(response.output_parsed, City)


def test_chat_tool_loop_through_the_stack(client: openai.OpenAI) -> None:
    messages: list[dict[str, object]] = [
        {"role": "user", "content": "Weather in Paris? Use get_weather."}
    ]
    first = client.chat.completions.create(
        model="demo",
        messages=messages,  # type: ignore[arg-type]
        tools=[CHAT_WEATHER],  # type: ignore[list-item]
    )
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls
    call = message.tool_calls[0]
    messages.append(message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny"})
    second = client.chat.completions.create(
        model="demo",
        messages=messages,  # type: ignore[arg-type]
        tools=[CHAT_WEATHER],  # type: ignore[list-item]
    )
    assert "sunny" in (second.choices[0].message.content or "")


def test_chat_parse_with_a_pydantic_model(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(
        model="demo", messages=[{"role": "user", "content": "A city"}], response_format=City
    )
    assert isinstance(completion.choices[0].message.parsed, City)


def test_openai_sdk_raises_rate_limit_with_retry_after(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(
            model="demo",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-demo-fault": "status=429"},
        )
    assert info.value.response.headers["retry-after"] == "1"
    assert info.value.code == "rate_limit_exceeded"


def test_openai_chat_stream_midstream_failure_raises(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="demo",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        extra_headers={"x-demo-fault": "midstream=2"},
    )
    with pytest.raises(openai.APIError):
        list(stream)


def test_openai_responses_stream_midstream_failure_raises(client: openai.OpenAI) -> None:
    with (
        pytest.raises(openai.APIError),
        client.responses.stream(
            model="demo", input="hi", extra_headers={"x-demo-fault": "midstream=2"}
        ) as stream,
    ):
        list(stream)


def test_openai_models_list_and_retrieve_alias(client: openai.OpenAI) -> None:
    assert {"demo", "demo-reasoning"} <= {m.id for m in client.models.list()}
    assert client.models.retrieve("demo-latest").id == "demo"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("unknown")


def test_auriko_chat_with_routing_options(aclient: auriko.Client) -> None:
    completion = aclient.chat.completions.create(
        messages=[{"role": "user", "content": "hi"}],
        gateway=GatewayOptions(
            models=["demo", "demo-reasoning"], routing=RoutingOptions(optimize="cost")
        ),
    )
    assert completion.routing_metadata is not None
    assert completion.routing_metadata.provider == "demo"
    assert completion.routing_metadata.routing_strategy == "cost"


def test_auriko_chat_stream_carries_routing_metadata(aclient: auriko.Client) -> None:
    stream = aclient.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == TEXT
    assert stream.routing_metadata is not None


def test_auriko_responses_stream(aclient: auriko.Client) -> None:
    stream = aclient.responses.create(model="demo", input="hi", stream=True)
    types = [event.type for event in stream]
    assert types[-1] == "response.completed"
    assert stream.completed_response is not None
    assert stream.completed_response.output_text == TEXT


def test_auriko_sdk_error_types(aclient: auriko.Client, served: tuple[str, str]) -> None:
    with pytest.raises(auriko.AurikoAPIError) as info:
        aclient.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 404
    base, _ = served
    with (
        auriko.Client(api_key="ak_live_" + "x" * 40, base_url=base + "/v1", max_retries=0) as bad,
        pytest.raises(auriko.AurikoAPIError) as info,
    ):
        bad.chat.completions.create(model="demo", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 401
