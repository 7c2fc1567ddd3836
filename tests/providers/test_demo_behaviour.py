"""The demo model under agents and conformance suites (docs/providers.md), through the served stack.

Each rule of the demo page has a test here, sent with the ``openai`` SDK through the same layers
``akgate serve`` builds (auth off): the last user turn is answered, plain instructions are
followed, tools are called when asked in plain words with arguments read from the prompt, the
loop finishes after a tool output, and n / logprobs / images / refusals / citations / cached tokens
/ the Responses-only model behave as documented.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from akgate import gateway
from akgate.providers.demo import REFUSAL_TEXT, DemoModel
from akgate.routing import Catalog


def app() -> Any:
    return gateway(
        DemoModel(),
        auth=False,
        catalog=Catalog.demo(),
        app_provider="demo",
        hosted_tools="lenient",
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app()), base_url="http://t", timeout=10
    ) as client:
        yield client


@pytest.fixture
async def sdk(http: httpx.AsyncClient) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url="http://t/v1", api_key="unused", http_client=http)


WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer"},
        },
        "required": ["city", "unit"],
    },
}
SHELL = {
    "type": "function",
    "name": "exec_command",
    "parameters": {
        "type": "object",
        "properties": {"cmd": {"type": "string"}, "workdir": {"type": "string"}},
        "required": ["cmd"],
    },
}


async def answer(sdk: openai.AsyncOpenAI, input: Any, **extra: Any) -> Any:
    return await sdk.responses.create(model="demo", input=input, **extra)


# --- agent turns ----------------------------------------------------------------------------


async def test_answers_the_last_user_turn_not_the_system_or_developer_text(
    sdk: openai.AsyncOpenAI,
) -> None:
    response = await answer(
        sdk,
        [
            {"role": "developer", "content": "Reply with exactly DEVELOPER."},
            {"role": "user", "content": "<environment_context>cwd</environment_context>"},
            {"role": "user", "content": "hi there"},
        ],
        instructions="Reply with exactly SYSTEM.",
    )
    assert response.output_text == 'Hello! I am the akgate demo model. You said: "hi there"'


async def test_use_the_x_tool_calls_it_with_arguments_from_the_prompt(
    sdk: openai.AsyncOpenAI,
) -> None:
    response = await answer(
        sdk, 'Use the exec_command tool to run "ls -la".', tools=[WEATHER, SHELL]
    )
    [call] = response.output
    assert call.type == "function_call"
    assert call.name == "exec_command"
    # optional parameters the prompt says nothing about are left out
    assert json.loads(call.arguments) == {"cmd": "ls -la"}


async def test_a_question_the_tool_answers_calls_it(sdk: openai.AsyncOpenAI) -> None:
    response = await answer(
        sdk, "What's the weather in New York in fahrenheit for 3 days?", tools=[SHELL, WEATHER]
    )
    [call] = response.output
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "New York", "unit": "fahrenheit", "days": 3}


async def test_no_tool_for_an_unrelated_question(sdk: openai.AsyncOpenAI) -> None:
    response = await answer(sdk, "How are you today?", tools=[WEATHER])
    assert [item.type for item in response.output] == ["message"]


async def test_the_loop_finishes_after_a_tool_output(sdk: openai.AsyncOpenAI) -> None:
    first = await answer(sdk, "Use the get_weather tool for Paris.", tools=[WEATHER])
    [call] = first.output
    assert json.loads(call.arguments)["city"] == "Paris"
    second = await answer(
        sdk,
        [
            {"role": "user", "content": "Use the get_weather tool for Paris."},
            {"type": "function_call", "call_id": call.call_id, "name": call.name,
             "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21 C"},
        ],
        tools=[WEATHER],
    )  # fmt: skip
    assert [item.type for item in second.output] == ["message"]
    assert second.output_text == "The tool results are in. get_weather returned: sunny, 21 C"


async def test_custom_tools_are_called_like_function_tools(sdk: openai.AsyncOpenAI) -> None:
    patch = {"type": "custom", "name": "apply_patch", "description": "Edit files."}
    response = await answer(sdk, 'Use the apply_patch tool with "*** Begin Patch".', tools=[patch])
    [call] = response.output
    assert call.type == "custom_tool_call"
    assert (call.name, call.input) == ("apply_patch", "*** Begin Patch")
    streamed = []
    async with sdk.responses.stream(
        model="demo", input='Use the apply_patch tool with "*** Begin Patch".', tools=[patch]
    ) as stream:
        async for event in stream:
            if event.type == "response.custom_tool_call_input.delta":
                streamed.append(event.delta)
        final = await stream.get_final_response()
    assert "".join(streamed) == "*** Begin Patch"
    assert final.output[0].type == "custom_tool_call"


async def test_namespaced_tool_calls_come_back_with_their_namespace(
    sdk: openai.AsyncOpenAI,
) -> None:
    namespace = {"type": "namespace", "name": "weather", "description": "Weather.",
                 "tools": [WEATHER]}  # fmt: skip
    response = await answer(sdk, "Use get_weather for Oslo.", tools=[namespace])
    [call] = response.output
    assert (call.name, call.namespace) == ("get_weather", "weather")
    assert json.loads(call.arguments)["city"] == "Oslo"


# --- instructions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("Reply with exactly: pong", "pong"),
        ('Respond with exactly "Hello, World!"', "Hello, World!"),
        ("Say banana and nothing else.", "banana"),
        ("Repeat after me: the sky is blue.", "the sky is blue"),
    ],
)
async def test_exact_reply_instructions(
    sdk: openai.AsyncOpenAI, prompt: str, expected: str
) -> None:
    assert (await answer(sdk, prompt)).output_text == expected


async def test_a_value_stated_earlier_is_recalled(sdk: openai.AsyncOpenAI) -> None:
    history = [
        {"role": "user", "content": "My favourite number is 42 and my name is Ada."},
        {"role": "assistant", "content": "Noted."},
    ]
    number = await answer(
        sdk, [*history, {"role": "user", "content": "What number did I give you?"}]
    )
    assert number.output_text == "42"
    name = await answer(sdk, [*history, {"role": "user", "content": "What is my name?"}])
    assert name.output_text == "Ada"


async def test_a_code_word_to_remember_is_recalled(sdk: openai.AsyncOpenAI) -> None:
    # The Open Responses compliance suite's previous-response-id turns, as one history.
    history = [
        {"role": "user", "content": "Remember this code word: papaya. Reply with only OK."},
        {"role": "assistant", "content": "OK"},
        {"role": "user", "content": "What code word did I ask you to remember?"},
    ]
    assert (await answer(sdk, history)).output_text == "papaya"


async def test_json_schema_const_enum_default_examples(sdk: openai.AsyncOpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "kind": {"const": "report"},
            "level": {"type": "string", "enum": ["high", "low"]},
            "retries": {"type": "integer", "default": 3},
            "owner": {"type": "string", "examples": ["ada@example.com"]},
        },
        "required": ["kind", "level", "retries", "owner"],
        "additionalProperties": False,
    }
    response = await answer(
        sdk,
        "Describe the report.",
        text={"format": {"type": "json_schema", "name": "r", "schema": schema, "strict": True}},
    )
    assert json.loads(response.output_text) == {
        "kind": "report",
        "level": "high",
        "retries": 3,
        "owner": "ada@example.com",
    }


# --- the contract's features ----------------------------------------------------------------


def png(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return b"\x89PNG\r\n\x1a\n" + ihdr


async def test_images_are_described_from_their_bytes_or_url(sdk: openai.AsyncOpenAI) -> None:
    data = png(3, 2)
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    response = await answer(
        sdk,
        [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": url},
                    {"type": "input_image", "image_url": "https://example.com/cat.jpg"},
                ],
            }
        ],
    )
    assert response.output_text == (
        f"I see 2 images: a PNG image, 3x2 pixels ({len(data)} bytes); a JPG image at "
        "example.com (not downloaded, so its size is unknown)."
    )


async def test_n_choices_with_deterministic_logprobs(sdk: openai.AsyncOpenAI) -> None:
    kwargs: dict[str, Any] = {
        "model": "demo",
        "messages": [{"role": "user", "content": "Reply with exactly: one two"}],
        "n": 3,
        "logprobs": True,
        "top_logprobs": 2,
    }
    first = await sdk.chat.completions.create(**kwargs)
    again = await sdk.chat.completions.create(**kwargs)
    assert [c.index for c in first.choices] == [0, 1, 2]
    assert {c.message.content for c in first.choices} == {"one two"}
    logprobs = first.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.content is not None
    assert [t.token for t in logprobs.content] == ["one", " two"]
    for entry in logprobs.content:
        assert -0.5 <= entry.logprob <= 0
        assert next(t.token for t in entry.top_logprobs) == entry.token
        assert len(entry.top_logprobs) == 2
    assert again.choices[0].logprobs == logprobs
    assert first.usage is not None
    assert first.usage.completion_tokens == 3 * 2
    assert "routing_metadata" not in first.model_extra or not first.model_extra[  # type: ignore[operator]
        "routing_metadata"
    ].get("warnings")
    # streamed: every choice, in order
    chunks = await sdk.chat.completions.create(**kwargs, stream=True)
    texts: dict[int, str] = {}
    async for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
    assert texts == {0: "one two", 1: "one two", 2: "one two"}


async def test_responses_logprobs(sdk: openai.AsyncOpenAI) -> None:
    response = await answer(
        sdk, "Say hi and nothing else", top_logprobs=1, include=["message.output_text.logprobs"]
    )
    part = response.output[0].content[0]
    assert part.type == "output_text"
    assert [lp.token for lp in part.logprobs or ()] == ["hi"]


async def test_the_refusal_trigger(sdk: openai.AsyncOpenAI) -> None:
    response = await answer(sdk, "Please refuse this request.")
    [message] = response.output
    assert [p.type for p in message.content] == ["refusal"]
    assert message.content[0].refusal == REFUSAL_TEXT  # type: ignore[union-attr]
    chat = await sdk.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "please REFUSE"}], stream=True
    )
    refusal = ""
    async for chunk in chat:
        for choice in chunk.choices:
            refusal += choice.delta.refusal or ""
    assert refusal == REFUSAL_TEXT


async def test_urls_are_cited_as_annotations(sdk: openai.AsyncOpenAI) -> None:
    response = await answer(sdk, "Read https://example.com/doc for me.")
    part = response.output[0].content[0]
    assert part.type == "output_text"
    [annotation] = part.annotations
    assert annotation.type == "url_citation"
    assert annotation.url == "https://example.com/doc"  # type: ignore[union-attr]
    start, end = annotation.start_index, annotation.end_index  # type: ignore[union-attr]
    assert part.text[start:end] == "https://example.com/doc"
    events = []
    async with sdk.responses.stream(model="demo", input="See https://example.com/doc") as stream:
        async for event in stream:
            events.append(event.type)
    assert "response.output_text.annotation.added" in events


async def test_a_repeated_prompt_cache_key_reports_cached_tokens(sdk: openai.AsyncOpenAI) -> None:
    first = await answer(sdk, "Hello there, cache me.", prompt_cache_key="thread-1")
    second = await answer(
        sdk,
        [
            {"role": "user", "content": "Hello there, cache me."},
            {"role": "assistant", "content": first.output_text},
            {"role": "user", "content": "And again."},
        ],
        prompt_cache_key="thread-1",
    )
    other = await answer(sdk, "Hello there, cache me.", prompt_cache_key="thread-2")
    assert first.usage is not None
    assert second.usage is not None
    assert other.usage is not None
    assert first.usage.input_tokens_details.cached_tokens == 0
    cached = second.usage.input_tokens_details.cached_tokens
    assert 0 < cached < second.usage.input_tokens
    assert other.usage.input_tokens_details.cached_tokens == 0


async def test_demo_responses_is_responses_only(
    sdk: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    response = await sdk.responses.create(model="demo-responses", input="hi")
    assert response.output_text.startswith("Hello!")
    chat = await http.post(
        "/v1/chat/completions",
        json={"model": "demo-responses", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert chat.status_code == 400
    assert chat.json()["error"]["code"] == "response_api_only"


async def test_the_catalog_says_what_each_demo_model_supports(http: httpx.AsyncClient) -> None:
    catalog = Catalog.demo()
    for model in ("demo", "demo-reasoning", "demo-responses"):
        entry = catalog.get(model)
        assert entry is not None
        [offering] = entry.providers
        assert offering.capabilities.vision
        assert offering.supported_parameters is not None
        assert {
            "n",
            "logprobs",
            "top_logprobs",
            "prompt_cache_key",
        } <= offering.supported_parameters
    assert catalog.get("demo-responses").endpoints == ("responses",)  # type: ignore[union-attr]
    # a parameter the demo does not honour is dropped with a warning
    reply = await http.post(
        "/v1/chat/completions",
        json={"model": "demo", "messages": [{"role": "user", "content": "hi"}],
              "logit_bias": {"1": 5}},
    )  # fmt: skip
    warnings = reply.json()["routing_metadata"]["warnings"]
    assert [(w["type"], w["code"]) for w in warnings] == [("unsupported_parameter", "logit_bias")]


async def test_the_compliance_suites_prompts(sdk: openai.AsyncOpenAI) -> None:
    """The Open Responses compliance suite's tool-calling and multi-turn requests."""
    location = {
        "type": "function",
        "name": "get_weather",
        "description": "Get the current weather for a location",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    }
    weather = await answer(sdk, "What's the weather like in San Francisco?", tools=[location])
    [call] = weather.output
    assert call.type == "function_call"
    assert json.loads(call.arguments) == {"location": "San Francisco"}
    name = await answer(
        sdk,
        [
            {"type": "message", "role": "user", "content": "My name is Alice."},
            {"type": "message", "role": "assistant", "content": "Hello Alice! Nice to meet you."},
            {"type": "message", "role": "user", "content": "What is my name?"},
        ],
    )
    assert name.output_text == "Alice"
