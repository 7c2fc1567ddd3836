"""Every layer answers ``/v1/messages*`` in Anthropic's error envelope, and only those paths."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from akgate import gateway
from akgate._types import Receive, Scope, Send
from akgate.auth import APIKeyAuth, MemoryKeyStore, create_key
from akgate.auth._keys import generate_key
from akgate.errors import GatewayError, send_error
from akgate.providers import DemoModel

from .checks import check_error

BODY = {"model": "demo", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
ANTHROPIC = {"anthropic-version": "2023-06-01", "anthropic-beta": "claude-code-20250219,x-y"}


@pytest.fixture
async def setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, MemoryKeyStore]]:
    monkeypatch.setenv("AKGATE_HOME", str(tmp_path))
    store = MemoryKeyStore()
    app = gateway(DemoModel(), keys=store, app_provider="demo", models=(), demo=True)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        yield http, store


async def test_x_api_key_and_bearer_both_work_with_anthropic_headers(
    setup: tuple[httpx.AsyncClient, MemoryKeyStore],
) -> None:
    http, store = setup
    key = (await create_key(store, environment="test")).key
    for auth in ({"x-api-key": key}, {"authorization": f"Bearer {key}"}):
        response = await http.post(
            "/v1/messages?beta=true", json=BODY, headers={**auth, **ANTHROPIC}
        )
        assert response.status_code == 200, response.text
        assert response.json()["type"] == "message"


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
async def test_auth_failures_use_the_anthropic_envelope(
    setup: tuple[httpx.AsyncClient, MemoryKeyStore], path: str
) -> None:
    http, _ = setup
    response = await http.post(path, json=BODY, headers=ANTHROPIC)
    assert response.status_code == 401
    check_error(response.json(), "authentication_error")
    assert response.headers["request-id"] == response.json()["request_id"]
    wrong = await http.post(path, json=BODY, headers={"x-api-key": generate_key("test")[0]})
    assert wrong.status_code == 401
    check_error(wrong.json(), "authentication_error")


async def test_permission_rate_limit_and_routing_errors(
    setup: tuple[httpx.AsyncClient, MemoryKeyStore],
) -> None:
    http, store = setup
    narrow = (await create_key(store, environment="test", allowed_models=("demo-reasoning",))).key
    response = await http.post("/v1/messages", json=BODY, headers={"x-api-key": narrow})
    assert response.status_code == 403
    check_error(response.json(), "permission_error")

    limited = (await create_key(store, environment="test", rate_limit_rpm=1)).key
    await http.post("/v1/messages", json=BODY, headers={"x-api-key": limited})
    response = await http.post("/v1/messages", json=BODY, headers={"x-api-key": limited})
    assert response.status_code == 429
    check_error(response.json(), "rate_limit_error")
    assert response.headers["retry-after"]

    key = (await create_key(store, environment="test")).key
    missing = {**BODY, "model": "nope"}
    response = await http.post("/v1/messages", json=missing, headers={"x-api-key": key})
    assert response.status_code == 404
    check_error(response.json(), "not_found_error")
    response = await http.get("/v1/messages", headers={"x-api-key": key})
    assert response.status_code == 405
    check_error(response.json(), "invalid_request_error")
    response = await http.post(
        "/v1/messages", content=b"{", headers={"x-api-key": key, "content-type": "application/json"}
    )
    assert response.status_code == 400
    check_error(response.json(), "invalid_request_error")


async def test_other_endpoints_keep_the_auriko_envelope(
    setup: tuple[httpx.AsyncClient, MemoryKeyStore],
) -> None:
    http, _ = setup
    body: dict[str, Any] = {"model": "demo", "messages": [{"role": "user", "content": "hi"}]}
    for path in ("/v1/chat/completions", "/v1/messagesx", "/v1/responses"):
        response = await http.post(path, json=body)
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["code"] == "invalid_api_key"
        assert "type" not in response.json()


async def test_a_layer_that_only_has_send_answers_in_the_endpoints_envelope() -> None:
    """Any layer (a budget check here) calls ``send_error(send, err)`` and gets the envelope of
    the endpoint the client called, without knowing which one it guards."""

    async def budget(scope: Scope, receive: Receive, send: Send) -> None:
        await send_error(send, GatewayError("budget_exhausted", "Budget exhausted."))

    store = MemoryKeyStore()
    key = (await create_key(store, environment="test")).key
    app = APIKeyAuth(budget, store=store)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        anthropic = await http.post("/v1/messages", json=BODY, headers={"x-api-key": key})
        auriko = await http.post("/v1/chat/completions", json=BODY, headers={"x-api-key": key})
    assert anthropic.status_code == auriko.status_code == 429
    check_error(anthropic.json(), "rate_limit_error")
    assert anthropic.json()["request_id"] == anthropic.headers["x-request-id"]
    assert auriko.json()["error"]["code"] == "budget_exhausted"


async def test_the_middleware_default_refuses_server_tools_and_messages_can_be_turned_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AKGATE_HOME", str(tmp_path))
    store = MemoryKeyStore()
    key = (await create_key(store, environment="test")).key
    body = {**BODY, "tools": [{"type": "web_search_20250305", "name": "web_search"}]}
    seen: list[str] = []

    async def chat_only(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["path"])
        await DemoModel()(scope, receive, send)

    for messages in (True, False):
        app = gateway(chat_only, keys=store, app_provider="demo", messages=messages)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as http:
            response = await http.post("/v1/messages", json=body, headers={"x-api-key": key})
        if messages:
            assert response.status_code == 400
            check_error(response.json(), "invalid_request_error")
            assert (
                "tools[0]" in response.json()["error"]["message"]
                or "web_search" in (response.json()["error"]["message"])
            )
            assert seen == []
        else:
            assert seen == ["/v1/messages"]  # the app's own, untranslated


def test_anthropic_error_types_follow_the_status() -> None:
    from akgate.errors import ERROR_CODES, anthropic_error_type

    expected = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        405: "invalid_request_error",
        409: "conflict_error",
        413: "request_too_large",
        429: "rate_limit_error",
        500: "api_error",
        502: "api_error",
        503: "overloaded_error",
        504: "timeout_error",
        418: "invalid_request_error",
        599: "api_error",
    }
    for status, type_ in expected.items():
        assert anthropic_error_type(status) == type_
    # Every registry code maps to one of Anthropic's types.
    types = {anthropic_error_type(status) for status, _ in ERROR_CODES.values()}
    assert types <= {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "conflict_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "overloaded_error",
        "timeout_error",
    }
