"""No input produces a 500: schema-generated bodies, valid and mutated, through the layer."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from akgate.errors import ERROR_CODES
from akgate.schemas.chat_request import ChatCompletionRequest
from akgate.schemas.responses_request import ResponsesRequest
from akgate.validation import RequestValidation

from .conftest import EchoApp
from .strategies import mutated, resolve, valid_bodies

ENDPOINTS = {"/v1/chat/completions": ChatCompletionRequest, "/v1/responses": ResponsesRequest}
MISSING_CODES = {"missing_required_parameter"}


async def call(path: str, raw: bytes) -> tuple[int, Any, EchoApp]:
    inner = EchoApp()
    messages = [{"type": "http.request", "body": raw, "more_body": False}]
    sent: list[Any] = []

    async def receive() -> Any:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(b"content-type", b"application/json")],
    }
    await RequestValidation(inner)(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body), inner


def check(body: Any, status: int, answer: Any, inner: EchoApp) -> None:
    if status == 200:
        assert inner.seen.calls == 1
        return
    assert inner.seen.calls == 0
    assert 400 <= status < 500, answer
    error = answer["error"]
    assert ERROR_CODES[error["code"]][0] == status
    param = error["param"]
    if param is not None:
        assert resolve(body, param, allow_missing_leaf=error["code"] in MISSING_CODES), error


@settings(max_examples=150)
@given(st.sampled_from(sorted(ENDPOINTS)), st.data())
async def test_schema_valid_bodies_pass(path: str, data: st.DataObject) -> None:
    body = data.draw(valid_bodies(ENDPOINTS[path]))
    status, answer, inner = await call(path, json.dumps(body).encode())
    assert status == 200, (answer, body)
    assert inner.seen.calls == 1


@settings(max_examples=200)
@given(st.sampled_from(sorted(ENDPOINTS)), st.data())
async def test_mutated_bodies_never_fail_badly(path: str, data: st.DataObject) -> None:
    body = data.draw(mutated(ENDPOINTS[path]))
    status, answer, inner = await call(path, json.dumps(body).encode())
    check(body, status, answer, inner)


@settings(max_examples=100)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
async def test_arbitrary_bytes_never_fail_badly(raw: bytes) -> None:
    for path in ENDPOINTS:
        status, answer, _ = await call(path, raw)
        assert status == 200 or (
            status == 400
            and answer["error"]["code"]
            in {
                "invalid_request",
                "missing_required_parameter",
                "invalid_parameter_value",
                "unknown_field",
                "operation_not_allowed",
            }
        )


async def test_ten_thousand_levels_of_nesting_is_a_clean_400() -> None:
    for depth in (10_000, 100_000):
        raw = b'{"model": "m", "messages": [' + b'{"a":' * depth + b"1" + b"}" * depth + b"]}"
        status, answer, _ = await call("/v1/chat/completions", raw)
        assert (status, answer["error"]["code"]) == (400, "invalid_request")
