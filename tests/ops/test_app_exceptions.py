"""The user's chat route raising: one ERROR record with the traceback, scrubbed, with the request
id, on /v1/chat/completions, /v1/responses and /v1/messages alike."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import akgate
from akgate._applog import scrub
from akgate.auth._keys import generate_key
from tests.messages.checks import check_error

SECRET = "sk-proj-abcdefghijklmnop"
LEAKY_URL = "https://user:hunter2@upstream.example/v1?api_key=zzzsecret"


MESSAGES = {"model": "mine", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}


def failing_app() -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(body: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError(f"model crashed calling {LEAKY_URL} with {SECRET}")

    return app


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/v1/chat/completions", {"model": "mine", "messages": [{"role": "user", "content": "x"}]}),
        ("/v1/responses", {"model": "mine", "input": "x"}),
        ("/v1/responses", {"model": "mine", "input": "x", "stream": True}),
        ("/v1/messages", {**MESSAGES, "stream": False}),
        ("/v1/messages", {**MESSAGES, "stream": True}),
    ],
)
async def test_user_exception_is_logged_once_at_error_with_traceback(
    path: str, payload: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    key, _ = generate_key("live")
    app = akgate.gateway(failing_app(), keys=[key], models=["mine"], demo=False)
    caplog.set_level(logging.DEBUG, logger="akgate")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"authorization": f"Bearer {key}"},
    ) as http:
        response = await http.post(path, json=payload)
    assert response.status_code in (200, 502)  # a stream has started: it ends in an error event
    request_id = response.headers["x-request-id"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    text = errors[0].getMessage()
    assert "RuntimeError" in text
    assert "Traceback (most recent call last)" in text
    assert "in chat" in text  # the user's own frame
    assert request_id in text
    assert errors[0].exc_info is None  # formatted (and scrubbed) here, not by a handler
    for secret in (SECRET, "hunter2", "zzzsecret", key):
        assert secret not in caplog.text
    if path == "/v1/messages":  # the route raised before its first chunk: a real HTTP error
        assert response.status_code == 502
        check_error(response.json(), "api_error")  # Anthropic's envelope, none of the text
        assert "crashed" not in response.text


def test_scrub_redacts_each_credential_shape() -> None:
    key, _ = generate_key("test")
    text = scrub(f"{key} Bearer abc.def {SECRET} {LEAKY_URL} token=t0k")
    for secret in (key, "abc.def", SECRET, "hunter2", "zzzsecret", "t0k"):
        assert secret not in text
    assert "upstream.example" in text
