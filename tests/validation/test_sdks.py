"""Invalid requests sent through the real ``openai`` and ``auriko`` SDKs raise BadRequestError."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import auriko
import httpx
import openai
import pytest
from auriko.errors import BadRequestError as AurikoBadRequest

from akgate.validation import RequestValidation

from .conftest import EchoApp

USER = [{"role": "user", "content": "Hi"}]


@pytest.fixture
async def openai_client() -> AsyncIterator[openai.AsyncOpenAI]:
    transport = httpx.ASGITransport(app=RequestValidation(EchoApp()))
    async with httpx.AsyncClient(transport=transport) as http:
        yield openai.AsyncOpenAI(
            api_key="sk-test", base_url="http://test/v1", http_client=http, max_retries=0
        )


@pytest.fixture
async def auriko_client() -> AsyncIterator[auriko.AsyncClient]:
    client = auriko.AsyncClient(api_key="ak_live_test", base_url="http://test", max_retries=0)
    # The SDK builds its own httpx client with no transport option: swap in one on the ASGI app.
    await client._httpx.aclose()
    client._httpx = httpx.AsyncClient(
        base_url=client.base_url,
        headers=client._default_headers,
        transport=httpx.ASGITransport(app=RequestValidation(EchoApp())),
    )
    yield client
    await client.close()


OPENAI_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "chat",
        {"model": "m", "messages": USER, "temperature": 3},
        "invalid_parameter_value",
        "temperature",
    ),
    (
        "chat",
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": ""}}]}
            ],
        },
        "invalid_parameter_value",
        "messages[0].content[0].image_url.url",
    ),
    (
        "chat",
        {
            "model": "m",
            "messages": USER,
            "extra_body": {"gateway": {"routing": {"max_fallback_attempts": 20}}},
        },
        "invalid_parameter_value",
        "gateway.routing.max_fallback_attempts",
    ),
    (
        "chat",
        {"model": "m", "messages": USER, "extra_body": {"models": ["a"]}},
        "unknown_field",
        "models",
    ),
    (
        "chat",
        {"model": "m", "messages": USER, "extra_body": {"gateway": {"models": ["a"]}}},
        "invalid_parameter_value",
        "gateway.models",
    ),
    ("responses", {"model": "m", "input": "Hi", "store": True}, "operation_not_allowed", "store"),
    (
        "responses",
        {"model": "m", "input": "Hi", "previous_response_id": "resp_1"},
        "operation_not_allowed",
        "previous_response_id",
    ),
    (
        "responses",
        {
            "model": "m",
            "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file_1"}]}],
        },
        "operation_not_allowed",
        "input[0].content[0]",
    ),
    (
        "responses",
        {"model": "m", "input": "Hi", "max_output_tokens": 8},
        "invalid_parameter_value",
        "max_output_tokens",
    ),
]


@pytest.mark.parametrize(("api", "kwargs", "code", "param"), OPENAI_CASES)
async def test_openai_sdk_gets_bad_request(
    openai_client: openai.AsyncOpenAI, api: str, kwargs: dict[str, Any], code: str, param: str
) -> None:
    create: Any = (
        openai_client.chat.completions.create if api == "chat" else openai_client.responses.create
    )
    with pytest.raises(openai.BadRequestError) as info:
        await create(**kwargs)
    assert info.value.status_code == 400
    assert isinstance(info.value.body, dict)
    assert (info.value.body["code"], info.value.body["param"]) == (code, param)
    assert (info.value.code, info.value.param) == (code, param)


async def test_openai_sdk_valid_request_passes(openai_client: openai.AsyncOpenAI) -> None:
    response = await openai_client.chat.completions.with_raw_response.create(
        model="m",
        messages=USER,
        temperature=1,  # type: ignore[arg-type]
    )
    assert response.status_code == 200


AURIKO_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("chat", {"model": "m", "messages": USER, "top_p": 1.5}, "invalid_parameter_value", "top_p"),
    (
        "chat",
        {"model": "m", "messages": USER, "reasoning_effort": "extreme"},
        "invalid_parameter_value",
        "reasoning_effort",
    ),
    (
        "chat",
        {
            "model": "m",
            "messages": USER,
            "gateway": {"routing": {"only_byok": True, "only_platform": True}},
        },
        "invalid_parameter_value",
        "gateway.routing.only_platform",
    ),
    (
        "chat",
        {"messages": USER, "gateway": {"models": [f"m{i}" for i in range(11)]}},
        "invalid_parameter_value",
        "gateway.models",
    ),
    (
        "chat",
        {"model": "m", "messages": USER, "gateway": {"metadata": {"env": "prod"}}},
        "unknown_field",
        "gateway.metadata.env",
    ),
    (
        "chat",
        {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
        "missing_required_parameter",
        "messages[0].tool_call_id",
    ),
    (
        "responses",
        {"model": "m", "input": "Hi", "extra_body": {"background": True}},
        "operation_not_allowed",
        "background",
    ),
    (
        "responses",
        {"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
        "missing_required_parameter",
        "input[0].call_id",
    ),
]


@pytest.mark.parametrize(("api", "kwargs", "code", "param"), AURIKO_CASES)
async def test_auriko_sdk_gets_bad_request(
    auriko_client: auriko.AsyncClient, api: str, kwargs: dict[str, Any], code: str, param: str
) -> None:
    create: Any = (
        auriko_client.chat.completions.create if api == "chat" else auriko_client.responses.create
    )
    with pytest.raises(AurikoBadRequest) as info:
        await create(**kwargs)
    assert (info.value.status_code, info.value.code, info.value.param) == (400, code, param)
    assert info.value.type == "invalid_request_error"
    assert info.value.doc_url == f"https://docs.auriko.ai/errors/{code}"
