"""The layer's HTTP behaviour: paths, method, content type, size, JSON, forwarding, options."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic_core import to_json
from starlette.applications import Starlette
from starlette.middleware import Middleware

from akgate._asgi import read_request_json, replay_receive
from akgate._types import Message, Receive, Scope, Send
from akgate.context import request_context
from akgate.validation import RequestValidation
from tests.support.raw import call_raw

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}
RESPONSES = {"model": "gpt-4o", "input": "Hi"}


def envelope(response: httpx.Response) -> dict[str, Any]:
    return response.json()["error"]  # type: ignore[no-any-return]


async def test_valid_chat_reaches_app_with_context(inner: Any, client_for: Any) -> None:
    response = await client_for(RequestValidation(inner)).post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 200
    ctx = inner.seen.ctx
    assert (ctx.endpoint, ctx.validated, ctx.payload) == ("chat_completions", True, CHAT)
    assert inner.seen.json == CHAT


async def test_valid_responses_sets_endpoint(inner: Any, client_for: Any) -> None:
    await client_for(RequestValidation(inner)).post("/v1/responses", json=RESPONSES)
    assert inner.seen.ctx.endpoint == "responses"


async def test_other_paths_pass_through_unread(client_for: Any) -> None:
    received: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        received.append(await receive())
        assert "akgate" not in scope
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    client = client_for(RequestValidation(app))
    response = await client.post("/v1/embeddings", content=b"not json")
    assert response.status_code == 204
    assert received[0]["body"] == b"not json"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "HEAD"])
async def test_wrong_method_is_405(method: str, inner: Any, client_for: Any) -> None:
    response = await client_for(RequestValidation(inner)).request(method, "/v1/responses")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    if method != "HEAD":
        assert envelope(response)["code"] == "method_not_allowed"
    assert inner.seen.calls == 0


async def test_options_preflight_passes_through(inner: Any, client_for: Any) -> None:
    response = await client_for(RequestValidation(inner)).options("/v1/chat/completions")
    assert response.status_code == 200
    assert inner.seen.calls == 1


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        (None, 415),
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("application/json", 200),
        ("application/json; charset=utf-8", 200),
        ("Application/JSON", 200),
        ("application/vnd.api+json", 200),
    ],
)
async def test_content_type(
    content_type: str | None, status: int, inner: Any, client_for: Any
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await client_for(RequestValidation(inner)).post(
        "/v1/chat/completions", content=to_json(CHAT), headers=headers
    )
    assert response.status_code == status
    if status == 415:
        error = envelope(response)
        assert (error["code"], error["type"], error["param"]) == (
            "invalid_request",
            "invalid_request_error",
            None,
        )


async def test_content_type_check_can_be_disabled(inner: Any, client_for: Any) -> None:
    client = client_for(RequestValidation(inner, require_json_content_type=False))
    response = await client.post("/v1/chat/completions", content=to_json(CHAT))
    assert response.status_code == 200


async def test_body_over_cap_is_413(inner: Any, client_for: Any) -> None:
    client = client_for(RequestValidation(inner, max_body_size=100))
    body = {**CHAT, "user": "x" * 200}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 413
    assert envelope(response)["code"] == "payload_too_large"


async def test_chunked_body_over_cap_is_413(inner: Any) -> None:
    layer = RequestValidation(inner, max_body_size=100)
    chunks = [b'{"model": "m", "user": "' + b"x" * 60, b"x" * 60 + b'"}']
    messages = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [(b"content-type", b"application/json")],
    }
    await layer(scope, receive, send)
    assert sent[0]["status"] == 413


async def test_cap_applies_to_a_body_read_by_an_outer_layer(inner: Any, client_for: Any) -> None:
    layer = RequestValidation(inner, max_body_size=50)

    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        scope, send, ctx = request_context(scope, send)
        await read_request_json(scope, receive, ctx)
        assert ctx.body is not None
        await layer(scope, replay_receive(ctx.body, receive), send)

    response = await client_for(outer).post("/v1/chat/completions", json={**CHAT, "user": "x" * 60})
    assert response.status_code == 413


@pytest.mark.parametrize(
    "body",
    [b"", b"   ", b"{", b"[1, 2]", b'"text"', b"null", b"\xff\xfe", b'{"a": NaN}', b"[" * 10_000],
    ids=["empty", "blank", "truncated", "array", "string", "null", "not-utf8", "nan", "deep"],
)
async def test_body_not_a_json_object_is_400(body: bytes, inner: Any, client_for: Any) -> None:
    response = await client_for(RequestValidation(inner)).post(
        "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert (envelope(response)["code"], envelope(response)["param"]) == ("invalid_request", None)


async def test_deeply_nested_value_is_400(inner: Any, client_for: Any) -> None:
    deep = b'{"model": "m", "messages": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    response = await client_for(RequestValidation(inner)).post(
        "/v1/chat/completions", content=deep, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert envelope(response)["code"] == "invalid_request"


async def test_normalized_body_has_correct_content_length(inner: Any, client_for: Any) -> None:
    body = {**CHAT, "functions": [{"name": "f"}], "function_call": "auto"}
    await client_for(RequestValidation(inner)).post("/v1/chat/completions", json=body)
    assert inner.seen.json["tools"] == [{"type": "function", "function": {"name": "f"}}]
    assert inner.seen.header(b"content-length") == str(len(inner.seen.body)).encode()
    assert inner.seen.ctx.body == inner.seen.body


async def test_unchanged_body_is_forwarded_byte_for_byte(inner: Any, client_for: Any) -> None:
    raw = b'{"model":  "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}'
    await client_for(RequestValidation(inner)).post(
        "/v1/chat/completions", content=raw, headers={"content-type": "application/json"}
    )
    assert inner.seen.body == raw
    assert inner.seen.header(b"content-length") == str(len(raw)).encode()


async def test_unchanged_body_keeps_the_scope_headers_as_they_came() -> None:
    """A body passed on unchanged is described by the server's own headers (its checked
    Content-Length, or its chunked framing): the inner app gets that very header list, where a
    normalized body gets a fresh Content-Length."""
    raw = to_json(CHAT)
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        await receive()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def call(body: bytes, headers: list[tuple[bytes, bytes]]) -> Scope:
        scope: Scope = {
            "type": "http",
            "method": "POST",
            "path": "/v1/chat/completions",
            "root_path": "",
            "query_string": b"",
            "headers": headers,
        }
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        receive = replay_receive(body, _never)
        await RequestValidation(app)(scope, receive, send)
        assert sent[0]["status"] == 204
        return seen.pop()

    length = (b"content-length", str(len(raw)).encode())
    for framing in (length, (b"transfer-encoding", b"chunked")):
        headers = [(b"content-type", b"application/json"), framing]
        assert (await call(raw, headers))["headers"] is headers
    legacy = to_json({**CHAT, "functions": [{"name": "f"}]})
    headers = [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")]
    inner = await call(legacy, headers)
    assert [k for k, _ in inner["headers"]] == [b"content-type", b"content-length"]


async def _never() -> Message:
    raise AssertionError("the body was read twice")


async def test_root_path_is_honoured(inner: Any, client_for: Any) -> None:
    client = client_for(RequestValidation(inner), root_path="/gateway")
    response = await client.post("/gateway/v1/chat/completions", json={"messages": []})
    assert response.status_code == 400
    ok = await client.post("/gateway/v1/chat/completions", json=CHAT)
    assert ok.status_code == 200


async def test_paths_come_from_the_endpoint_table(inner: Any, client_for: Any) -> None:
    client = client_for(RequestValidation(inner))
    assert (await client.post("/chat", json={})).status_code == 200  # not the gateway's
    assert (await client.post("/v1/chat/completions", json={})).status_code == 400
    # A path that is not canonical is refused, never passed on unvalidated.
    for path in ("/v1/./chat/completions", "/v1/chat/completions;x", "/v1//responses"):
        response = await call_raw(RequestValidation(inner), "POST", path, body=b"{}")
        assert response.status == 404, path


async def test_trailing_slash_matches(inner: Any, client_for: Any) -> None:
    response = await client_for(RequestValidation(inner)).post("/v1/responses/", json={})
    assert response.status_code == 400


async def test_unknown_fields_warn_mode_forwards_them(inner: Any, client_for: Any) -> None:
    client = client_for(RequestValidation(inner, unknown_fields="warn"))
    response = await client.post("/v1/chat/completions", json={**CHAT, "vendor_x": {"a": 1}})
    assert response.status_code == 200
    assert inner.seen.json["vendor_x"] == {"a": 1}
    assert inner.seen.ctx.warnings == [
        {
            "type": "unsupported_field",
            "code": "vendor_x",
            "message": inner.seen.ctx.warnings[0]["message"],
        }
    ]


async def test_warn_mode_still_refuses_legacy_fields(inner: Any, client_for: Any) -> None:
    client = client_for(RequestValidation(inner, unknown_fields="warn"))
    response = await client.post("/v1/chat/completions", json={**CHAT, "routing": {}})
    assert envelope(response)["code"] == "unknown_field"
    assert "gateway.routing" in envelope(response)["message"]


async def test_gateway_and_extensions_kept_by_default(inner: Any, client_for: Any) -> None:
    body = {**CHAT, "gateway": {"metadata": {"tags": ["a"]}}, "extensions": {"x": {"k": 1}}}
    await client_for(RequestValidation(inner)).post("/v1/chat/completions", json=body)
    assert inner.seen.json == body


async def test_strip_gateway_removes_them(inner: Any, client_for: Any) -> None:
    body = {**CHAT, "gateway": {"metadata": {"tags": ["a"]}}, "extensions": {"x": {"k": 1}}}
    client = client_for(RequestValidation(inner, strip_gateway=True))
    await client.post("/v1/chat/completions", json=body)
    assert inner.seen.json == CHAT
    assert inner.seen.header(b"content-length") == str(len(inner.seen.body)).encode()


async def test_body_parsed_once_when_outer_layer_read_it(inner: Any, client_for: Any) -> None:
    layer = RequestValidation(inner)
    parsed: list[object] = []

    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        scope, send, ctx = request_context(scope, send)
        parsed.append(await read_request_json(scope, receive, ctx))
        assert ctx.body is not None
        await layer(scope, replay_receive(ctx.body, receive), send)

    await client_for(outer).post("/v1/chat/completions", json=CHAT)
    assert inner.seen.ctx.payload is parsed[0]


async def test_nested_layers_validate_once(inner: Any, client_for: Any, monkeypatch: Any) -> None:
    from akgate.validation import _middleware

    calls: list[str] = []
    original = _middleware.validate_with_model

    def counting(endpoint: Any, payload: Any, **kwargs: Any) -> bool:
        calls.append("model")
        return original(endpoint, payload, **kwargs)

    monkeypatch.setattr(_middleware, "validate_with_model", counting)
    plain_check = _middleware.SIMPLE["chat_completions"]

    def counting_plain(payload: Any) -> bool:
        # A plain request is checked here, without the model: that is its validation.
        calls.append("plain")
        return plain_check(payload)

    monkeypatch.setitem(_middleware.SIMPLE, "chat_completions", counting_plain)
    app = RequestValidation(RequestValidation(inner))
    response = await client_for(app).post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 200
    assert calls == ["plain"]
    assert inner.seen.json == CHAT
    # A request that is not plain: the plain check once (it walks every message), then the
    # model once.
    calls.clear()
    not_plain = {**CHAT, "stop": ["\n"]}
    response = await client_for(app).post("/v1/chat/completions", json=not_plain)
    assert response.status_code == 200
    assert calls == ["plain", "model"]


async def test_works_with_add_middleware(client_for: Any) -> None:
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def chat(request: Request) -> JSONResponse:
        return JSONResponse({"echo": await request.json()})

    app = Starlette(
        routes=[Route("/v1/chat/completions", chat, methods=["POST"])],
        middleware=[Middleware(RequestValidation, unknown_fields="reject")],
    )
    client = client_for(app)
    assert (await client.post("/v1/chat/completions", json=CHAT)).json() == {"echo": CHAT}
    bad = await client.post("/v1/chat/completions", json={**CHAT, "temperature": 9})
    assert envelope(bad)["param"] == "temperature"
    assert bad.headers["x-request-id"].startswith("req_")


async def test_lifespan_and_websocket_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    layer = RequestValidation(app)

    async def nothing() -> Message:
        raise AssertionError

    async def drop(message: Message) -> None:
        raise AssertionError

    await layer({"type": "lifespan"}, nothing, drop)
    await layer({"type": "websocket", "path": "/v1/responses"}, nothing, drop)
    assert seen == ["lifespan", "websocket"]


async def test_client_disconnect_mid_body_sends_nothing(inner: Any) -> None:
    messages: list[Message] = [
        {"type": "http.request", "body": b'{"model":', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/responses",
        "headers": [(b"content-type", b"application/json")],
    }
    await RequestValidation(inner)(scope, receive, send)
    assert sent == []
    assert inner.seen.calls == 0


async def test_inner_app_gets_disconnect_after_replay(client_for: Any) -> None:
    received: list[Message] = []
    upstream: list[Message] = [
        {"type": "http.request", "body": to_json(CHAT), "more_body": False},
        {"type": "http.disconnect"},
    ]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        received.append(await receive())
        received.append(await receive())

    async def receive() -> Message:
        return upstream.pop(0)

    async def send(message: Message) -> None:
        return None

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [(b"content-type", b"application/json")],
    }
    await RequestValidation(app)(scope, receive, send)
    assert [m["type"] for m in received] == ["http.request", "http.disconnect"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_body_size": 0}, "positive"),
        ({"max_body_size": True}, "integer"),
        ({"unknown_fields": "ignore"}, "unknown_fields"),
    ],
)
def test_bad_configuration_raises(options: dict[str, Any], message: str, inner: Any) -> None:
    with pytest.raises(ValueError, match=message):
        RequestValidation(inner, **options)
