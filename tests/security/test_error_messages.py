"""Errors the client sees name the provider and the request id, never the upstream's address
or what its error body said (those go to the log)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from akgate import gateway
from akgate.auth import MemoryKeyStore
from akgate.auth._stores import new_key_record
from akgate.providers import UpstreamProvider
from tests.support.raw import call_raw
from tests.support.servers import free_port

KEY = new_key_record(name="k")
CHAT = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
HOST = "secret-upstream.internal"

ANSWERS = {
    "429 naming the operator's org": httpx.Response(
        429,
        json={"error": {"message": "Rate limit reached for org-OPERATOR123 in project p"}},
    ),
    "401 about the operator's key": httpx.Response(
        401, json={"error": {"message": "Incorrect API key provided: sk-op***xyz"}}
    ),
    "500 with a body": httpx.Response(500, text=f"Traceback at {HOST}: db password wrong"),
    "503 html": httpx.Response(503, text=f"<html>{HOST} maintenance</html>"),
}


def stack(provider: UpstreamProvider) -> Any:
    return gateway(provider, keys=MemoryKeyStore([KEY.record]), models=["m"], demo=False)


async def send(app: Any, body: bytes = CHAT) -> Any:
    headers = [("authorization", f"Bearer {KEY.key}"), ("content-type", "application/json")]
    return await call_raw(app, "POST", "/v1/chat/completions", headers=headers, body=body)


@pytest.mark.parametrize("case", list(ANSWERS))
async def test_upstream_error_bodies_stay_in_the_log(
    case: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: ANSWERS[case]))
    provider = UpstreamProvider(f"https://{HOST}/v1", api_key="sk-op", client=client)
    response = await send(stack(provider))
    assert response.status >= 400
    text = response.body.decode()
    for leaked in (HOST, "OPERATOR123", "sk-op", "Traceback", "maintenance", "Incorrect"):
        assert leaked not in text, case
    error = response.json()["error"]
    assert error["provider"] == "app"  # the provider's name, as routing knows it
    assert response.headers["x-request-id"] in error["message"]
    assert any(s in caplog.text for s in ("OPERATOR123", "Incorrect", "Traceback", "maintenance"))


async def test_an_unreachable_upstream_is_named_not_located(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    provider = UpstreamProvider(f"http://127.0.0.1:{port}/v1", connect_timeout=2)
    try:
        response = await send(stack(provider))
    finally:
        await provider.aclose()
    assert response.status == 502
    text = response.body.decode()
    assert "127.0.0.1" not in text
    assert str(port) not in text
    assert response.headers["x-request-id"] in text
    assert f"127.0.0.1:{port}" in caplog.text  # the operator finds it in the log


async def test_the_clients_own_request_errors_keep_the_upstreams_message() -> None:
    answer = httpx.Response(400, json={"error": {"message": "max_tokens is too large: 10**9"}})
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: answer))
    provider = UpstreamProvider("https://up/v1", client=client)
    response = await send(stack(provider))
    assert response.status == 400
    assert "max_tokens is too large" in response.json()["error"]["message"]
