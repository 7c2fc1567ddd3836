from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import httpx2
import openai
import pytest
from httpx_sse import aconnect_sse

from akgate.providers import _demo as demo_module
from akgate.providers._demo import DemoModel, count_tokens
from akgate.schemas.chat import ChatCompletionChunk
from tests.providers._harness import call, http_scope, sse_data
from tests.providers._jsonschema_check import errors
from tests.support.servers import run_uvicorn

URL = "/v1/chat/completions"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"timezone": {"type": "string"}, "iso": {"type": "boolean"}},
            "required": ["timezone"],
        },
    },
}


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=DemoModel())
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as http:
        yield http


@pytest.fixture
async def sdk() -> AsyncIterator[openai.AsyncOpenAI]:
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=DemoModel()))
    async with openai.AsyncOpenAI(
        base_url="http://demo/v1", api_key="unused", http_client=http, max_retries=0
    ) as client:
        yield client


async def stream_chunks(client: httpx.AsyncClient, body: dict[str, Any]) -> list[str]:
    async with aconnect_sse(client, "POST", URL, json={**body, "stream": True}) as source:
        return [event.data async for event in source.aiter_sse()]


def chunks_of(data: list[str]) -> list[dict[str, Any]]:
    return [json.loads(d) for d in data if d != "[DONE]"]


# --- answers -------------------------------------------------------------------------------


async def test_non_streaming_answer_parses_as_openai_chat_completion(
    sdk: openai.AsyncOpenAI,
) -> None:
    completion = await sdk.chat.completions.create(model="demo", messages=user("Hi there"))
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "demo"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == (
        'Hello! I am the akgate demo model. You said: "Hi there"'
    )
    assert completion.usage is not None
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


async def test_same_request_gives_same_content(client: httpx.AsyncClient) -> None:
    body = {"model": "demo", "messages": user("Say something"), "tools": [WEATHER]}
    first = (await client.post(URL, json=body)).json()
    second = (await client.post(URL, json=body)).json()
    assert first["choices"] == second["choices"]
    assert first["usage"] == second["usage"]


async def test_usage_follows_the_documented_token_rule(client: httpx.AsyncClient) -> None:
    reply = (await client.post(URL, json={"model": "demo", "messages": user("a, b")})).json()
    content = reply["choices"][0]["message"]["content"]
    # per message: 3 + tokens(role) + tokens(text); "a, b" is 3 tokens, "user" is 1.
    assert reply["usage"]["prompt_tokens"] == 3 + 1 + 3
    assert reply["usage"]["completion_tokens"] == count_tokens(content)
    assert reply["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}
    assert reply["usage"]["completion_tokens_details"] == {"reasoning_tokens": 0}


async def test_content_parts_are_read_as_text(client: httpx.AsyncClient) -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "parts work"}]}]
    reply = (await client.post(URL, json={"model": "demo", "messages": messages})).json()
    assert reply["choices"][0]["message"]["content"].endswith('"parts work"')


async def test_max_tokens_truncates_with_finish_reason_length(client: httpx.AsyncClient) -> None:
    for key in ("max_tokens", "max_completion_tokens"):
        body = {"model": "demo", "messages": user("hello"), key: 4}
        reply = (await client.post(URL, json=body)).json()
        assert reply["choices"][0]["finish_reason"] == "length"
        assert reply["choices"][0]["message"]["content"] == "Hello! I am"
        assert reply["usage"]["completion_tokens"] == 4


async def test_stop_sequence_cuts_the_content(client: httpx.AsyncClient) -> None:
    body = {"model": "demo", "messages": user("hello"), "stop": ["demo"]}
    reply = (await client.post(URL, json=body)).json()
    assert reply["choices"][0]["message"]["content"] == "Hello! I am the akgate "
    assert reply["choices"][0]["finish_reason"] == "stop"


async def test_json_object_format_answers_a_json_object(client: httpx.AsyncClient) -> None:
    body = {"model": "demo", "messages": user("hi"), "response_format": {"type": "json_object"}}
    reply = (await client.post(URL, json=body)).json()
    assert isinstance(json.loads(reply["choices"][0]["message"]["content"]), dict)


async def test_json_schema_format_answers_a_valid_instance_when_streamed(
    client: httpx.AsyncClient,
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 3},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        },
        "required": ["title", "score", "tags"],
        "additionalProperties": False,
    }
    body = {
        "model": "demo",
        "messages": user("hi"),
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "review", "schema": schema, "strict": True},
        },
    }
    chunks = chunks_of(await stream_chunks(client, body))
    pieces = [c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]]
    assert len([p for p in pieces if p]) > 5  # still token by token
    value = json.loads("".join(pieces))
    assert errors(value, schema) == []


async def test_demo_reasoning_puts_reasoning_content_on_the_message(
    client: httpx.AsyncClient,
) -> None:
    reply = (
        await client.post(URL, json={"model": "demo-reasoning", "messages": user("hi")})
    ).json()
    message = reply["choices"][0]["message"]
    assert reply["model"] == "demo-reasoning"
    assert message["reasoning_content"]
    assert message["content"]
    details = reply["usage"]["completion_tokens_details"]
    assert details["reasoning_tokens"] == count_tokens(message["reasoning_content"])


async def test_plain_demo_has_no_reasoning(client: httpx.AsyncClient) -> None:
    reply = (await client.post(URL, json={"model": "demo", "messages": user("hi")})).json()
    assert "reasoning_content" not in reply["choices"][0]["message"]


# --- streaming -----------------------------------------------------------------------------


async def test_stream_follows_the_openai_chunk_shape(client: httpx.AsyncClient) -> None:
    data = await stream_chunks(client, {"model": "demo", "messages": user("hi")})
    assert data[-1] == "[DONE]"
    chunks = chunks_of(data)
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
        assert "usage" not in chunk  # only present when include_usage asks for it
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}
    assert chunks[0]["id"].startswith("chatcmpl-")
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    reply = (await client.post(URL, json={"model": "demo", "messages": user("hi")})).json()
    assert text == reply["choices"][0]["message"]["content"]


async def test_include_usage_adds_a_final_usage_chunk(client: httpx.AsyncClient) -> None:
    body = {"model": "demo", "messages": user("hi"), "stream_options": {"include_usage": True}}
    chunks = chunks_of(await stream_chunks(client, body))
    assert chunks[-1]["choices"] == []
    assert all(c["usage"] is None for c in chunks[:-1])
    reply = (await client.post(URL, json={"model": "demo", "messages": user("hi")})).json()
    assert chunks[-1]["usage"] == reply["usage"]


async def test_demo_reasoning_streams_reasoning_before_content(
    client: httpx.AsyncClient,
) -> None:
    chunks = chunks_of(
        await stream_chunks(client, {"model": "demo-reasoning", "messages": user("hi")})
    )
    kinds = [
        next(iter(c["choices"][0]["delta"]), None) for c in chunks[1:] if c["choices"][0]["delta"]
    ]
    assert kinds[0] == "reasoning_content"
    assert kinds.index("content") > kinds.count("reasoning_content") - 1
    assert "reasoning_content" not in kinds[kinds.index("content") :]


async def test_each_chunk_is_its_own_body_message() -> None:
    sent = await call(DemoModel(), {"model": "demo", "messages": user("hi"), "stream": True})
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    data = sse_data(sent)
    assert len(bodies) == len(data)  # one event per message, none held back
    assert all(m["more_body"] for m in bodies[:-1])
    assert bodies[-1]["more_body"] is False
    start = sent[0]
    assert start["type"] == "http.response.start"
    assert (b"content-type", b"text/event-stream; charset=utf-8") in start["headers"]
    assert not any(name == b"content-length" for name, _ in start["headers"])


async def test_token_delay_pauses_between_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    real_sleep = anyio.sleep

    async def recording_sleep(delay: float) -> None:
        pauses.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(demo_module.anyio, "sleep", recording_sleep)
    sent = await call(
        DemoModel(token_delay=0.05), {"model": "demo", "messages": user("hi"), "stream": True}
    )
    assert pauses
    assert set(pauses) == {0.05}
    assert len(pauses) == len(sse_data(sent)) - 1


async def test_streams_over_a_real_server_with_the_openai_sdk() -> None:
    with run_uvicorn(DemoModel(token_delay=0.001)) as base:
        client = openai.AsyncOpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)
        async with client:
            stream = await client.chat.completions.create(
                model="demo",
                messages=user("stream please"),
                stream=True,
                stream_options={"include_usage": True},
            )
            pieces = []
            usage = None
            async for chunk in stream:
                if chunk.choices:
                    pieces.append(chunk.choices[0].delta.content or "")
                usage = chunk.usage or usage
    assert "".join(pieces).endswith('"stream please"')
    assert usage is not None
    assert usage.completion_tokens == len([p for p in pieces if p])


# --- tools ---------------------------------------------------------------------------------


def tool_calls(reply: dict[str, Any]) -> list[dict[str, Any]]:
    return reply["choices"][0]["message"].get("tool_calls") or []


async def test_tool_is_called_when_the_prompt_names_it(sdk: openai.AsyncOpenAI) -> None:
    completion = await sdk.chat.completions.create(
        model="demo", messages=user("What is the weather? Use get_weather."), tools=[WEATHER, TIME]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather"]  # type: ignore[union-attr]
    arguments = json.loads(calls[0].function.arguments)  # type: ignore[union-attr]
    assert errors(arguments, WEATHER["function"]["parameters"]) == []
    assert calls[0].id.startswith("call_")


async def test_several_named_tools_are_called_in_parallel(client: httpx.AsyncClient) -> None:
    body = {
        "model": "demo",
        "messages": user("call get_time and get_weather"),
        "tools": [WEATHER, TIME],
    }
    calls = tool_calls((await client.post(URL, json=body)).json())
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert len({c["id"] for c in calls}) == 2
    for call_, tool in zip(calls, (WEATHER, TIME)):
        assert (
            errors(json.loads(call_["function"]["arguments"]), tool["function"]["parameters"]) == []
        )


async def test_parallel_tool_calls_false_calls_only_one(client: httpx.AsyncClient) -> None:
    body = {
        "model": "demo",
        "messages": user("get_time and get_weather"),
        "tools": [WEATHER, TIME],
        "parallel_tool_calls": False,
    }
    assert len(tool_calls((await client.post(URL, json=body)).json())) == 1


async def test_trigger_word_calls_the_first_tool(client: httpx.AsyncClient) -> None:
    body = {"model": "demo", "messages": user("please use the tool"), "tools": [TIME, WEATHER]}
    assert [
        c["function"]["name"] for c in tool_calls((await client.post(URL, json=body)).json())
    ] == ["get_time"]


async def test_no_tool_call_without_a_trigger(client: httpx.AsyncClient) -> None:
    body = {"model": "demo", "messages": user("tell me a story"), "tools": [WEATHER]}
    reply = (await client.post(URL, json=body)).json()
    assert tool_calls(reply) == []
    assert reply["choices"][0]["finish_reason"] == "stop"


async def test_tool_choice_required_forces_a_call(client: httpx.AsyncClient) -> None:
    body = {
        "model": "demo",
        "messages": user("tell me a story"),
        "tools": [WEATHER],
        "tool_choice": "required",
    }
    assert len(tool_calls((await client.post(URL, json=body)).json())) == 1


async def test_tool_choice_naming_a_function_calls_that_one(client: httpx.AsyncClient) -> None:
    body = {
        "model": "demo",
        "messages": user("use get_weather"),
        "tools": [WEATHER, TIME],
        "tool_choice": {"type": "function", "function": {"name": "get_time"}},
    }
    calls = tool_calls((await client.post(URL, json=body)).json())
    assert [c["function"]["name"] for c in calls] == ["get_time"]


async def test_tool_choice_none_never_calls(client: httpx.AsyncClient) -> None:
    body = {
        "model": "demo",
        "messages": user("call get_weather"),
        "tools": [WEATHER],
        "tool_choice": "none",
    }
    assert tool_calls((await client.post(URL, json=body)).json()) == []


async def test_streamed_tool_calls_have_openai_deltas(client: httpx.AsyncClient) -> None:
    body = {
        "model": "demo",
        "messages": user("call get_weather and get_time"),
        "tools": [WEATHER, TIME],
    }
    chunks = chunks_of(await stream_chunks(client, body))
    deltas = [d for c in chunks for d in c["choices"][0]["delta"].get("tool_calls", [])]
    heads = [d for d in deltas if "id" in d]
    assert [h["index"] for h in heads] == [0, 1]
    for head in heads:
        assert head["type"] == "function"
        assert head["function"]["arguments"] == ""
    fragments = [d for d in deltas if "id" not in d]
    assert all(
        set(d) == {"index", "function"} and set(d["function"]) == {"arguments"} for d in fragments
    )
    assert len(fragments) > 2
    assembled = [
        "".join(d["function"]["arguments"] for d in fragments if d["index"] == i) for i in (0, 1)
    ]
    reply = (await client.post(URL, json={**body, "stream": False})).json()
    assert assembled == [c["function"]["arguments"] for c in tool_calls(reply)]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_answers_in_text_quoting_the_tool_result(sdk: openai.AsyncOpenAI) -> None:
    messages: list[Any] = [
        *user("call get_weather"),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
    ]
    completion = await sdk.chat.completions.create(model="demo", messages=messages, tools=[WEATHER])
    assert completion.choices[0].finish_reason == "stop"
    assert "get_weather returned: sunny, 21 C" in (completion.choices[0].message.content or "")


# --- errors --------------------------------------------------------------------------------


async def test_unknown_model_is_404_model_not_found(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await sdk.chat.completions.create(model="gpt-unknown", messages=user("hi"))
    assert caught.value.code == "model_not_found"
    assert caught.value.param == "model"


async def test_malformed_json_is_a_400_envelope(client: httpx.AsyncClient) -> None:
    response = await client.post(
        URL, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


async def test_missing_messages_is_a_400_naming_the_param(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, json={"model": "demo"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "missing_required_parameter"
    assert response.json()["error"]["param"] == "messages"


async def test_unknown_path_is_404_resource_not_found(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/embeddings", json={})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_not_found"


async def test_wrong_method_is_405(client: httpx.AsyncClient) -> None:
    response = await client.get(URL)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response.headers["allow"] == "POST"


async def test_models_endpoint_lists_both_demo_models(sdk: openai.AsyncOpenAI) -> None:
    models = [m.id async for m in sdk.models.list()]
    assert models == ["demo", "demo-reasoning"]


async def test_path_below_root_path_is_served() -> None:
    app = DemoModel()
    sent: list[Any] = []
    body = json.dumps({"model": "demo", "messages": user("hi")}).encode()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    # This receive never blocks (it replays the body forever): the app must still finish.
    with anyio.fail_after(5):
        await app(http_scope(root_path="/gateway"), receive, send)
    assert sent[0]["status"] == 200


# --- faults --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [(500, "internal_error"), (429, "rate_limit_exceeded"), (503, "service_unavailable")],
)
async def test_status_fault_answers_that_status(
    client: httpx.AsyncClient, status: int, code: str
) -> None:
    body = {"model": "demo", "messages": user("hi"), "stream": True}
    response = await client.post(URL, json=body, headers={"x-demo-fault": f"status={status}"})
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert ("retry-after" in response.headers) == (status != 500)


async def test_midstream_fault_sends_an_error_frame_then_done(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="demo",
        messages=user("hi"),
        stream=True,
        extra_headers={"x-demo-fault": "midstream=2"},
    )
    received: list[Any] = []

    async def consume() -> None:
        async for chunk in stream:
            received.append(chunk)

    with pytest.raises(openai.APIError, match="middle of the stream"):
        await consume()
    assert len(received) == 3  # the role chunk and two tokens


async def test_midstream_fault_frame_is_the_envelope_before_done() -> None:
    sent = await call(
        DemoModel(fault="midstream"), {"model": "demo", "messages": user("hi"), "stream": True}
    )
    data = sse_data(sent)
    assert data[-1] == "[DONE]"
    error = json.loads(data[-2])["error"]
    assert set(error) >= {"message", "type", "code", "param", "doc_url"}


async def test_exception_fault_raises_after_the_response_started() -> None:
    with pytest.raises(RuntimeError, match="demo fault"):
        await call(
            DemoModel(),
            {"model": "demo", "messages": user("hi"), "stream": True},
            headers=[(b"x-demo-fault", b"exception")],
        )


async def test_drop_fault_ends_without_finish_reason_or_done() -> None:
    sent = await call(
        DemoModel(fault="drop"), {"model": "demo", "messages": user("hi"), "stream": True}
    )
    data = sse_data(sent)
    assert "[DONE]" not in data
    assert all(json.loads(d)["choices"][0]["finish_reason"] is None for d in data)
    assert sent[-1]["more_body"] is False


async def test_slow_first_byte_fault_waits_before_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events: list[Any] = []
    real_sleep = anyio.sleep

    async def recording_sleep(delay: float) -> None:
        events.append(("sleep", delay))
        await real_sleep(0)

    monkeypatch.setattr(demo_module.anyio, "sleep", recording_sleep)
    sent = await call(
        DemoModel(),
        {"model": "demo", "messages": user("hi")},
        headers=[(b"x-demo-fault", b"slow-first-byte=150")],
    )
    assert events == [("sleep", 0.15)]
    assert sent[0]["status"] == 200


async def test_delay_fault_overrides_the_token_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    real_sleep = anyio.sleep

    async def recording_sleep(delay: float) -> None:
        pauses.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(demo_module.anyio, "sleep", recording_sleep)
    await call(
        DemoModel(token_delay=1.0),
        {"model": "demo", "messages": user("hi"), "stream": True},
        headers=[(b"x-demo-fault", b"delay=2")],
    )
    assert set(pauses) == {0.002}


async def test_bad_fault_header_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        URL, json={"model": "demo", "messages": user("hi")}, headers={"x-demo-fault": "explode"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "x-demo-fault"


async def test_fault_header_is_ignored_when_disabled() -> None:
    sent = await call(
        DemoModel(allow_fault_header=False),
        {"model": "demo", "messages": user("hi")},
        headers=[(b"x-demo-fault", b"status=500")],
    )
    assert sent[0]["status"] == 200


def test_bad_constructor_options_raise_value_error() -> None:
    with pytest.raises(ValueError):
        DemoModel(fault="status=200")
    with pytest.raises(ValueError):
        DemoModel(token_delay=-1)


# --- protocol ------------------------------------------------------------------------------


async def test_client_disconnect_stops_the_stream() -> None:
    app = DemoModel(token_delay=0.01)
    long_text = "word " * 300
    sent = await call(
        app,
        {"model": "demo", "messages": user(long_text), "stream": True},
        disconnect_after_bodies=3,
    )
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert len(bodies) < 20  # stopped long before the ~200 tokens of the answer
    assert all(m["more_body"] for m in bodies)


async def test_lifespan_startup_and_shutdown_complete() -> None:
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    await DemoModel()({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_websocket_scope_is_refused() -> None:
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(message)

    await DemoModel()({"type": "websocket", "path": "/v1/chat/completions"}, receive, send)
    assert sent[0]["type"] == "websocket.close"


async def test_exception_fault_without_stream_raises_before_the_response() -> None:
    app = DemoModel(fault="exception")
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {
            "type": "http.request",
            "body": json.dumps({"model": "demo", "messages": user("hi")}).encode(),
        }

    async def send(message: Any) -> None:
        sent.append(message)

    with pytest.raises(RuntimeError, match="before the response"):
        await app(http_scope(), receive, send)
    assert sent == []
