"""The ``anthropic`` Python SDK against the served stack: in process and over ``akgate serve``.

Every test runs twice: through ``httpx2.ASGITransport`` (the SDK's own HTTP library) on
``akgate serve``'s stack, and against a real ``python -m akgate serve`` subprocess.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

from akgate import gateway
from akgate._serve import ServeConfig, build_app
from akgate._types import Receive, Scope, Send
from akgate.auth import MemoryKeyStore, create_key, ensure_demo_key
from akgate.auth._keys import generate_key
from akgate.providers import DemoModel
from tests.support.servers import free_port
from tests.test_serve import start_serve, stop

PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real ``akgate serve`` subprocess: (base URL without /v1, its ak_test_ key)."""
    process, reader, base_url, key = start_serve(free_port(), tmp_path_factory.mktemp("home"))
    assert key is not None
    try:
        yield base_url.removesuffix("/v1"), key
    finally:
        stop(process, reader)


@pytest.fixture(params=["asgi", "serve"])
async def client(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[anthropic.AsyncAnthropic]:
    if request.param == "serve":
        base, key = request.getfixturevalue("served")
        async with anthropic.AsyncAnthropic(api_key=key, base_url=base, max_retries=0) as c:
            yield c
        return
    monkeypatch.setenv("AKGATE_HOME", str(tmp_path))
    store = MemoryKeyStore()
    key = await ensure_demo_key(store)
    assert key is not None
    http = httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=build_app(ServeConfig(token_delay_ms=0), keys=store)),
        base_url="http://t",
    )
    async with anthropic.AsyncAnthropic(
        api_key=key, base_url="http://t", http_client=http, max_retries=0
    ) as c:
        yield c


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


async def test_create_json(client: anthropic.AsyncAnthropic) -> None:
    message = await client.messages.create(model="demo", max_tokens=200, messages=user("Hello"))
    assert message.id.startswith("msg_")
    assert message.role == "assistant"
    assert message.model == "demo"
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    assert "Hello" in message.content[0].text
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0
    extra = message.model_extra or {}
    assert extra["routing_metadata"]["provider"] == "demo"


async def test_create_stream(client: anthropic.AsyncAnthropic) -> None:
    stream = await client.messages.create(
        model="demo", max_tokens=200, messages=user("Hello"), stream=True
    )
    types = [event.type async for event in stream]
    assert types[0] == "message_start"
    assert types[1] == "content_block_start"
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert types.count("content_block_start") == types.count("content_block_stop") == 1


async def test_stream_helper_and_final_message(client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.stream(
        model="demo", max_tokens=200, messages=user("Say something")
    ) as stream:
        text = "".join([chunk async for chunk in stream.text_stream])
        final = await stream.get_final_message()
    assert final.content[0].type == "text"
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


async def test_full_tool_loop(client: anthropic.AsyncAnthropic) -> None:
    messages: list[Any] = user("What is the weather in Paris? Use the tool.")
    first = await client.messages.create(
        model="demo", max_tokens=200, messages=messages, tools=[WEATHER]
    )
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather"
    assert call.id.startswith("toolu_")
    assert isinstance(call.input, dict)
    messages += [
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21 C"}],
        },
    ]
    async with client.messages.stream(
        model="demo", max_tokens=200, messages=messages, tools=[WEATHER]
    ) as stream:
        answer = await stream.get_final_message()
    assert answer.stop_reason == "end_turn"
    assert answer.content[-1].type == "text"
    assert "Sunny, 21 C" in answer.content[-1].text


async def test_thinking_on_the_reasoning_model(client: anthropic.AsyncAnthropic) -> None:
    message = await client.messages.create(
        model="demo-reasoning",
        max_tokens=2000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=user("Hello"),
    )
    thinking = message.content[0]
    assert thinking.type == "thinking"
    assert thinking.thinking
    assert thinking.signature
    assert message.content[1].type == "text"
    async with client.messages.stream(
        model="demo-reasoning",
        max_tokens=2000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=user("Hello"),
    ) as stream:
        final = await stream.get_final_message()
    assert final.content[0].type == "thinking"
    assert final.content[0].thinking == thinking.thinking
    assert final.content[0].signature == thinking.signature
    # The thinking block replays on the next turn without an error.
    again = await client.messages.create(
        model="demo-reasoning",
        max_tokens=2000,
        messages=[*user("Hello"), {"role": "assistant", "content": final.content}, *user("Thanks")],
    )
    assert again.stop_reason == "end_turn"


async def test_image_input(client: anthropic.AsyncAnthropic) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    content = [image, {"type": "text", "text": "What is it?"}]
    message = await client.messages.create(
        model="demo", max_tokens=200, messages=[{"role": "user", "content": content}]
    )
    assert message.stop_reason == "end_turn"
    assert message.content


async def test_image_reaches_the_chat_app_as_an_image_url_part() -> None:
    """The image goes on as a chat ``image_url`` part; a model without vision is refused in
    Anthropic's envelope."""
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    content = [image, {"type": "text", "text": "What is it?"}]
    seen: list[Any] = []

    async def vision_app(scope: Scope, receive: Receive, send: Send) -> None:
        body = json.loads((await receive())["body"])
        seen.append(body["messages"][-1]["content"])
        await DemoModel()(scope, _replay(json.dumps(body).encode()), send)

    key = generate_key("test")[0]
    models = {
        "seeing": {"model_id": "demo", "capabilities": {"vision": True}},
        "blind": {"model_id": "demo", "capabilities": {"vision": False}},
    }
    app = gateway(vision_app, keys=[key], models=models, demo=False)
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t")
    async with anthropic.AsyncAnthropic(
        api_key=key, base_url="http://t", http_client=http, max_retries=0
    ) as client:
        message = await client.messages.create(
            model="seeing", max_tokens=200, messages=[{"role": "user", "content": content}]
        )
        with pytest.raises(anthropic.BadRequestError) as refused:
            await client.messages.create(
                model="blind", max_tokens=200, messages=[{"role": "user", "content": content}]
            )
    assert message.stop_reason == "end_turn"
    assert seen[0][0] == {
        "type": "image_url",
        "image_url": {"url": f"data:image/png;base64,{PNG}"},
    }
    assert "image" in refused.value.message


def _replay(body: bytes) -> Receive:
    async def receive() -> Any:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def test_max_tokens_stop(client: anthropic.AsyncAnthropic) -> None:
    message = await client.messages.create(model="demo", max_tokens=3, messages=user("Hello"))
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 3


async def test_stop_sequences_cut_the_answer(client: anthropic.AsyncAnthropic) -> None:
    plain = await client.messages.create(model="demo", max_tokens=200, messages=user("Hello"))
    text = plain.content[0].text
    assert "demo" in text
    message = await client.messages.create(
        model="demo", max_tokens=200, messages=user("Hello"), stop_sequences=["demo"]
    )
    assert message.content[0].text == text[: text.find("demo")]


async def test_count_tokens(client: anthropic.AsyncAnthropic) -> None:
    small = await client.messages.count_tokens(model="demo", messages=user("Hi"))
    large = await client.messages.count_tokens(
        model="demo", system="Be brief. " * 50, messages=user("Hi"), tools=[WEATHER]
    )
    assert 0 < small.input_tokens < large.input_tokens


async def test_models_list_for_anthropic_clients(client: anthropic.AsyncAnthropic) -> None:
    page = await client.models.list()
    ids = [m.id for m in page.data]
    assert "demo" in ids
    model = page.data[ids.index("demo")]
    assert model.type == "model"
    assert model.display_name
    assert model.created_at.year >= 2024
    retrieved = await client.models.retrieve("demo-reasoning")
    assert retrieved.id == "demo-reasoning"


async def test_error_classes(client: anthropic.AsyncAnthropic) -> None:
    wrong = client.with_options(api_key="ak_test_" + "x" * 40)
    with pytest.raises(anthropic.AuthenticationError) as auth:
        await wrong.messages.create(model="demo", max_tokens=5, messages=user("x"))
    assert auth.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as bad:
        await client.messages.create(
            model="demo",
            max_tokens=5,
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image", "source": {"type": "file", "file_id": "file_1"}}],
                }
            ],
        )
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError) as missing:
        await client.messages.create(model="no-such-model", max_tokens=5, messages=user("x"))
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert missing.value.request_id


async def test_rate_limit_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AKGATE_HOME", str(tmp_path))
    store = MemoryKeyStore()
    new = await create_key(store, environment="test", rate_limit_rpm=1)
    app = build_app(ServeConfig(token_delay_ms=0), keys=store)
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t")
    async with anthropic.AsyncAnthropic(
        api_key=new.key, base_url="http://t", http_client=http, max_retries=0
    ) as client:
        await client.messages.create(model="demo", max_tokens=5, messages=user("x"))
        with pytest.raises(anthropic.RateLimitError) as limited:
            await client.messages.create(model="demo", max_tokens=5, messages=user("x"))
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert limited.value.response.headers["retry-after"]


async def test_stop_sequence_named_by_a_vllm_style_backend() -> None:
    """A backend that names the stop string it matched gives ``stop_reason: stop_sequence``."""

    async def vllm_like(scope: Scope, receive: Receive, send: Send) -> None:
        body = json.loads((await receive())["body"])
        answer = {
            "id": "c",
            "object": "chat.completion",
            "created": 1,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "1, 2, "},
                    "finish_reason": "stop",
                    "stop_reason": body["stop"][0],
                }
            ],
            "usage": {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7},
        }
        data = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})

    key = generate_key("test")[0]
    app = gateway(vllm_like, keys=[key], models=["counter"], demo=False)
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t")
    async with anthropic.AsyncAnthropic(
        api_key=key, base_url="http://t", http_client=http, max_retries=0
    ) as client:
        message = await client.messages.create(
            model="counter", max_tokens=20, messages=user("count"), stop_sequences=["3"]
        )
    assert message.stop_reason == "stop_sequence"
    assert message.stop_sequence == "3"


async def test_serve_drops_server_tools_with_a_warning(client: anthropic.AsyncAnthropic) -> None:
    """``akgate serve`` runs the lenient hosted-tools policy: the answer says what was dropped."""
    message = await client.messages.create(
        model="demo",
        max_tokens=50,
        messages=user("Hello"),
        tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 2}],
    )
    assert message.stop_reason == "end_turn"
    warnings = (message.model_extra or {})["routing_metadata"]["warnings"]
    assert [w["type"] for w in warnings] == ["dropped_tool"]
    assert warnings[0]["code"] == "tools[0]"


async def test_streamed_tool_call_parses_in_the_sdk(client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.stream(
        model="demo-reasoning",
        max_tokens=500,
        messages=user("What is the weather in Paris? Use the tool."),
        tools=[WEATHER],
    ) as stream:
        events = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert "input_json" in events
    call = final.content[-1]
    assert call.type == "tool_use"
    assert call.name == "get_weather"
    assert isinstance(call.input, dict)
    assert call.input
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "thinking"
