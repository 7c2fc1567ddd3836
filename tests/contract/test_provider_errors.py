"""A provider's error reaches the client in the envelope of the endpoint it called.

Before, routing forwarded a provider's 4xx body unchanged: OpenAI's envelope (``code: null``, no
``doc_url``), which the auriko SDK reads as a malformed response, or a framework's ``detail``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import auriko
import httpx
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from akgate.auth import generate_key
from akgate.errors import ERROR_TYPES
from akgate.routing._provider_errors import scrub
from akgate.stack import gateway

from .conftest import over_app

MESSAGE = "Invalid value for 'temperature': must be at most 2."


@dataclass
class ErrorApp:
    """A provider that answers every request with one scripted error."""

    status: int
    body: Any
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    calls: int = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        self.calls += 1
        raw = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        headers = [(b"content-type", b"application/json"), *self.headers]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": raw})


def openai_error(message: str, param: str | None = None, code: str | None = None) -> Any:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    }


CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


async def call(
    app: ErrorApp, path: str = "/v1/chat/completions", body: Any = CHAT
) -> httpx.Response:
    async with over_app(app) as client:  # type: ignore[arg-type]
        headers = {"anthropic-version": "2023-06-01"} if path == "/v1/messages" else {}
        return await client.post(path, json=body, headers=headers)


def envelope(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] in ERROR_TYPES
    assert error["doc_url"] == f"https://docs.auriko.ai/errors/{error['code']}"
    return error


async def test_an_openai_400_becomes_the_auriko_envelope_with_the_providers_message() -> None:
    for path, body in (
        ("/v1/chat/completions", CHAT),
        ("/v1/responses", {"model": "m", "input": "hi"}),
    ):
        r = await call(ErrorApp(400, openai_error(MESSAGE, "temperature")), path, body)
        assert r.status_code == 400, r.text
        error = envelope(r)
        assert (error["code"], error["param"], error["message"]) == (
            "invalid_parameter_value",
            "temperature",
            MESSAGE,
        )
        assert error["provider"] == "app"


async def test_a_registry_code_from_the_provider_is_kept() -> None:
    r = await call(ErrorApp(400, openai_error("Too long.", "messages", "context_length_exceeded")))
    assert (r.status_code, envelope(r)["code"]) == (400, "context_length_exceeded")


async def test_the_openai_sdk_gets_a_bad_request_error_with_the_message() -> None:
    app = ErrorApp(400, openai_error(MESSAGE, "temperature"))
    async with over_app(app) as client:  # type: ignore[arg-type]
        sdk = openai.AsyncOpenAI(
            api_key=client.headers["authorization"].split()[1],
            base_url="http://gateway/v1",
            http_client=client,
            max_retries=0,
        )
        with pytest.raises(openai.BadRequestError) as caught:
            await sdk.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}]
            )
    assert caught.value.code == "invalid_parameter_value"
    assert MESSAGE in caught.value.message


async def test_a_framework_422_is_a_400_invalid_request() -> None:
    r = await call(ErrorApp(422, {"detail": "field required"}))
    assert r.status_code == 400
    error = envelope(r)
    assert (error["code"], error["message"]) == ("invalid_request", "field required")


async def test_secrets_and_addresses_in_the_providers_message_are_not_echoed() -> None:
    said = (
        "Bad request with key sk-proj-4f9a8b7c6d5e at https://10.0.0.7:8000/v1/chat "
        "(Authorization: Bearer abc.def.ghi) token 0123456789abcdef0123456789abcdef"
    )
    r = await call(ErrorApp(400, openai_error(said)))
    message = envelope(r)["message"]
    for secret in ("sk-proj", "10.0.0.7", "abc.def", "0123456789abcdef0123456789abcdef"):
        assert secret not in message
    assert message.startswith("Bad request with key [redacted]")


async def test_a_404_is_model_not_found() -> None:
    r = await call(ErrorApp(404, {"error": {"message": "The model `m` does not exist"}}))
    assert r.status_code == 404
    error = envelope(r)
    assert (error["code"], error["param"]) == ("model_not_found", "model")
    assert "does not exist" in error["message"]


async def test_a_providers_401_does_not_blame_the_callers_key() -> None:
    app = ErrorApp(401, openai_error("Incorrect API key provided: sk-live-123456789."))
    r = await call(app)
    assert r.status_code == 502
    error = envelope(r)
    assert error["code"] == "upstream_error"
    assert "not your API key" in error["message"]
    assert "sk-live" not in r.text
    assert r.headers.get("www-authenticate") is None


async def test_a_providers_429_keeps_retry_after() -> None:
    r = await call(ErrorApp(429, openai_error("slow down"), [(b"retry-after", b"7")]))
    assert r.status_code == 429
    assert envelope(r)["code"] == "rate_limit_exceeded"
    assert r.headers["retry-after"] == "7"


async def test_a_providers_500_is_upstream_error() -> None:
    r = await call(ErrorApp(500, b"<html>oops</html>"))
    assert (r.status_code, envelope(r)["code"]) == (502, "upstream_error")


async def test_a_valid_auriko_envelope_is_forwarded_unchanged() -> None:
    body = {
        "error": {
            "message": "Too long.",
            "type": "invalid_request_error",
            "code": "context_length_exceeded",
            "param": "messages",
            "doc_url": "https://docs.auriko.ai/errors/context_length_exceeded",
            "suggestion": "Shorten the conversation.",
        }
    }
    r = await call(ErrorApp(400, body))
    assert r.status_code == 400
    assert r.json() == body


async def test_messages_gets_anthropics_envelope() -> None:
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    r = await call(ErrorApp(400, openai_error(MESSAGE, "temperature")), "/v1/messages", body)
    assert r.status_code == 400, r.text
    answer = r.json()
    assert answer["type"] == "error"
    assert answer["error"]["type"] == "invalid_request_error"
    assert MESSAGE in answer["error"]["message"]
    r = await call(ErrorApp(404, {"detail": "no such model"}), "/v1/messages", body)
    assert (r.status_code, r.json()["error"]["type"]) == (404, "not_found_error")


@given(
    st.from_regex(r"(sk-proj-|sk-|ak_live_|Bearer )[A-Za-z0-9]{8,40}", fullmatch=True),
    st.text(alphabet="abcdefgh ,.:", max_size=40),
)
def test_scrub_never_echoes_a_credential(secret: str, around: str) -> None:
    cleaned = scrub(f"{around} {secret} {around}")
    assert secret not in cleaned
    assert secret.split()[-1] not in cleaned


async def test_the_auriko_sdk_reads_a_providers_400_as_a_bad_request_not_a_malformed_body() -> None:
    app = ErrorApp(400, openai_error(MESSAGE, "temperature"))
    key = generate_key("live")[0]
    stack = gateway(app, keys=[key], models=["m"], demo=False)
    sdk = auriko.AsyncClient(api_key=key, base_url="http://gateway/v1", max_retries=0)
    sdk._httpx = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=stack),
        base_url="http://gateway/v1",
        headers=sdk._default_headers,
    )
    async with sdk:
        with pytest.raises(auriko.BadRequestError) as caught:
            await sdk.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}]
            )
    assert caught.value.code == "invalid_parameter_value"
    assert caught.value.param == "temperature"
