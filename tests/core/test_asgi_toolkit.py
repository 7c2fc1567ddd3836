from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from akgate._asgi import (
    ClientDisconnected,
    answer_lifespan,
    dumps,
    find_header,
    parse_json_object,
    read_body,
    read_request_json,
    replay_receive,
    route_path,
    scope_with_body,
    send_json,
)
from akgate._types import Message, Receive, Scope, Send
from akgate.context import RequestContext, get_context, request_context
from akgate.errors import GatewayError, send_error


def http_scope(headers: list[tuple[bytes, bytes]] | None = None, **extra: Any) -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "root_path": "",
        "headers": headers or [],
        **extra,
    }


def receiver(*messages: Message) -> Receive:
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        raise AssertionError("receive() called after the scripted messages")

    return receive


class EchoLayer:
    """A minimal layer built on the toolkit: parses the body once and echoes it as JSON."""

    def __init__(self, max_size: int = 1024) -> None:
        self.max_size = max_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope, send, ctx = request_context(scope, send)
        try:
            payload = await read_request_json(scope, receive, ctx, max_size=self.max_size)
        except GatewayError as err:
            await send_error(send, err)
            return
        except ClientDisconnected:
            return
        await send_json(send, 200, {"echo": payload})


async def post(
    app: Any, content: bytes | Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return await c.post("/v1/chat/completions", content=content, headers=headers or {})


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert set(error) >= {"message", "type", "code", "param", "doc_url"}
    assert error["doc_url"] == f"https://docs.auriko.ai/errors/{code}"
    assert "Traceback" not in response.text
    return error  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe{}", "UTF-8"),
        (b'{"a": "\xc3"}', "UTF-8"),
        (b"[1, 2]", "JSON object"),
        (b'"text"', "JSON object"),
        (b"null", "JSON object"),
        (b'{"a": NaN}', "not valid JSON"),
        (b'{"a": [1, {"b": 1e400}]}', "out of range"),
        (b'{"a": -2E+999}', "out of range"),
        # No exponent at all: 400 digits before the point overflow a float just the same.
        (b'{"a": {"b": 1' + b"0" * 400 + b".0}}", "out of range"),
        (b'{"a": -' + b"9" * 309 + b".5}", "out of range"),
        (b"[" * 10_000 + b"]" * 10_000, "nested too deeply"),
        (b'{"a":' * 5_000 + b"1" + b"}" * 5_000, "nested too deeply"),
    ],
)
async def test_malformed_bodies_get_invalid_request(body: bytes, fragment: str) -> None:
    response = await post(EchoLayer(max_size=1 << 20), body)
    error = assert_envelope(response, 400, "invalid_request")
    assert error["type"] == "invalid_request_error"
    assert error["param"] is None
    assert fragment in error["message"]


async def test_long_numbers_that_fit_pass() -> None:
    # A long integer stays an integer; 308 digits before the point still fit in a float.
    body = b'{"n": 1' + b"0" * 400 + b', "f": 1' + b"0" * 307 + b".0}"
    response = await post(EchoLayer(), body)
    assert response.status_code == 200
    assert response.json()["echo"]["n"] == 10**400


async def test_valid_object_passes() -> None:
    response = await post(EchoLayer(), b'{"model": "demo", "x": [1, 2]}')
    assert response.status_code == 200
    assert response.json() == {"echo": {"model": "demo", "x": [1, 2]}}


async def test_declared_length_over_cap_is_413_before_reading() -> None:
    calls = 0

    async def receive() -> Message:
        nonlocal calls
        calls += 1
        return {"type": "http.request", "body": b"x" * 10, "more_body": True}

    scope = http_scope([(b"content-length", b"5000")])
    with pytest.raises(GatewayError) as info:
        await read_body(scope, receive, max_size=1000)
    assert info.value.status == 413
    assert info.value.code == "payload_too_large"
    assert calls == 0


async def test_chunked_body_over_cap_stops_reading_early() -> None:
    calls = 0

    async def receive() -> Message:
        nonlocal calls
        calls += 1
        return {"type": "http.request", "body": b"x" * 400, "more_body": True}

    with pytest.raises(GatewayError) as info:
        await read_body(http_scope(), receive, max_size=1000)
    assert info.value.code == "payload_too_large"
    assert calls == 3  # 1200 bytes > 1000: stopped at once, the endless rest never read


async def test_oversized_body_envelope_end_to_end() -> None:
    response = await post(EchoLayer(max_size=100), b'{"a": "' + b"x" * 500 + b'"}')
    assert_envelope(response, 413, "payload_too_large")


async def test_oversized_chunked_body_end_to_end() -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(50):
            yield b"x" * 100

    response = await post(EchoLayer(max_size=1000), chunks())
    assert_envelope(response, 413, "payload_too_large")


async def test_invalid_content_length_header() -> None:
    with pytest.raises(GatewayError) as info:
        await read_body(http_scope([(b"content-length", b"abc")]), receiver(), max_size=10)
    assert info.value.code == "invalid_request"


async def test_disconnect_mid_body_sends_nothing() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    receive = receiver(
        {"type": "http.request", "body": b'{"a":', "more_body": True},
        {"type": "http.disconnect"},
    )
    await EchoLayer()(http_scope(), receive, send)
    assert sent == []


async def test_read_body_raises_client_disconnected() -> None:
    with pytest.raises(ClientDisconnected):
        await read_body(http_scope(), receiver({"type": "http.disconnect"}))


async def test_body_joined_from_chunks() -> None:
    receive = receiver(
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"", "more_body": True},
        {"type": "http.request", "body": b"cd"},
    )
    assert await read_body(http_scope(), receive) == b"abcd"


async def test_read_request_json_is_cached_on_context() -> None:
    ctx = RequestContext()
    receive = receiver({"type": "http.request", "body": b'{"a": 1}'})
    first = await read_request_json(http_scope(), receive, ctx)
    second = await read_request_json(http_scope(), receiver(), ctx)  # would raise if it read again
    assert first is second == {"a": 1}
    assert ctx.body == b'{"a": 1}'


async def test_replay_yields_body_once_then_delegates() -> None:
    downstream = receiver({"type": "http.disconnect"})
    replay = replay_receive(b"hello", downstream)
    assert await replay() == {"type": "http.request", "body": b"hello", "more_body": False}
    assert await replay() == {"type": "http.disconnect"}


def test_scope_with_body_rewrites_content_length_on_a_copy() -> None:
    headers = [(b"content-length", b"3"), (b"content-type", b"application/json")]
    scope = http_scope(headers)
    new = scope_with_body(scope, b"12345")
    assert (b"content-length", b"5") in new["headers"]
    assert (b"content-length", b"3") not in new["headers"]
    assert scope["headers"] == headers  # the original is untouched


def test_scope_with_body_rewrites_path_keeping_root_path() -> None:
    scope = http_scope(path="/api/v1/responses", root_path="/api")
    new = scope_with_body(scope, b"{}", path="/v1/chat/completions")
    assert new["path"] == "/api/v1/chat/completions"
    assert new["raw_path"] == b"/api/v1/chat/completions"
    assert new["root_path"] == "/api"


@pytest.mark.parametrize(
    ("path", "root_path", "expected"),
    [
        ("/v1/responses", "", "/v1/responses"),
        ("/api/v1/responses", "/api", "/v1/responses"),
        ("/v1/responses", "/api", "/v1/responses"),  # old servers: path excludes root_path
    ],
)
def test_route_path(path: str, root_path: str, expected: str) -> None:
    assert route_path({"path": path, "root_path": root_path}) == expected


def test_parse_json_object_returns_dict() -> None:
    assert parse_json_object(b' {"a": [1, {"b": null}]} ') == {"a": [1, {"b": None}]}


def test_large_but_finite_numbers_are_accepted() -> None:
    assert parse_json_object(b'{"a": 1e300, "b": 12345678901234567890123}') == {
        "a": 1e300,
        "b": 12345678901234567890123,
    }


def test_dumps_never_writes_infinity() -> None:
    assert dumps({"a": float("inf")}) == b'{"a":null}'


async def test_request_context_created_once_and_request_id_header_added() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope, wrapped_send, ctx = request_context(http_scope(), send)
    assert get_context(scope) is ctx
    # An inner layer reuses the context and does not wrap send again.
    scope2, send2, ctx2 = request_context(scope, wrapped_send)
    assert ctx2 is ctx
    assert send2 is wrapped_send
    assert scope2 is scope
    await wrapped_send({"type": "http.response.start", "status": 200, "headers": []})
    assert (b"x-request-id", ctx.request_id.encode()) in sent[0]["headers"]
    assert ctx.request_id.startswith("req_")


async def test_request_id_header_is_added_once_and_the_apps_message_is_not_changed() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    _, wrapped_send, ctx = request_context(http_scope(), send)
    headers = [(b"content-type", b"application/json")]
    start = {"type": "http.response.start", "status": 200, "headers": headers}
    await wrapped_send(start)
    assert sent[0]["headers"] == [*headers, (b"x-request-id", ctx.request_id.encode())]
    assert start["headers"] is headers
    assert headers == [(b"content-type", b"application/json")]
    # An id the app set (in any letter case) stays the only one.
    own = {"type": "http.response.start", "status": 200, "headers": [(b"X-Request-ID", b"up-1")]}
    await wrapped_send(own)
    assert sent[1]["headers"] == [(b"X-Request-ID", b"up-1")]
    await wrapped_send({"type": "http.response.body", "body": b"x"})
    assert sent[2] == {"type": "http.response.body", "body": b"x"}


def test_the_anthropic_paths_get_their_error_envelope() -> None:
    async def send(message: Message) -> None:  # pragma: no cover
        pass

    for path, expected in [
        ("/v1/messages", "anthropic"),
        ("/v1/messages/count_tokens", "anthropic"),
        ("/v1/messagesx", "auriko"),
        ("/v1/chat/completions", "auriko"),
    ]:
        scope = {**http_scope(), "path": path, "root_path": ""}
        assert request_context(scope, send)[2].error_format == expected, path
    mounted = {**http_scope(), "path": "/api/v1/messages", "root_path": "/api"}
    assert request_context(mounted, send)[2].error_format == "anthropic"


def test_incoming_request_id_is_honoured_when_sane() -> None:
    async def send(message: Message) -> None:  # pragma: no cover
        pass

    _, _, ctx = request_context(http_scope([(b"x-request-id", b"abc-123")]), send)
    assert ctx.request_id == "abc-123"
    _, _, ctx = request_context(http_scope([(b"x-request-id", b"bad\x01id")]), send)
    assert ctx.request_id.startswith("req_")


def test_context_warnings_deduplicate() -> None:
    ctx = RequestContext()
    ctx.warn("blocked_field", "extensions.openai.api_key", "stripped")
    ctx.warn("blocked_field", "extensions.openai.api_key", "stripped again")
    assert ctx.warnings == [
        {"type": "blocked_field", "code": "extensions.openai.api_key", "message": "stripped"}
    ]


async def test_send_json_sets_length() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await send_json(send, 201, {"ok": True}, headers=[(b"x-a", b"1")])
    body = sent[1]["body"]
    assert json.loads(body) == {"ok": True}
    assert (b"content-length", str(len(body)).encode()) in sent[0]["headers"]
    assert sent[0]["status"] == 201


def test_child_context_shares_identity_warnings_and_state() -> None:
    ctx = RequestContext(body=b"{}", payload={}, validated=True)
    child = ctx.child({"model": "x"}, b'{"model":"x"}', "chat_completions")
    assert (child.payload, child.body, child.endpoint) == (
        {"model": "x"},
        b'{"model":"x"}',
        "chat_completions",
    )
    assert child.request_id == ctx.request_id
    assert child.validated
    child.warn("blocked_field", "extensions.x.api_key", "stripped")
    child.state["routing"] = 1
    assert ctx.warnings == child.warnings
    assert ctx.state == {"routing": 1}
    assert ctx.payload == {}


def test_child_context_copies_every_field() -> None:
    # RequestContext.child is spelled out for speed: a new field must be added there too.
    import dataclasses

    ctx = RequestContext()
    child = ctx.child({}, b"", "responses")
    for field in dataclasses.fields(RequestContext):
        if field.name not in ("payload", "body", "endpoint"):
            assert getattr(child, field.name) is getattr(ctx, field.name), field.name


async def test_answer_lifespan_completes_startup_and_shutdown() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    receive = receiver({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"})
    await answer_lifespan(receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_find_header_matches_response_headers_case_insensitively() -> None:
    headers = [(b"Content-Type", b"text/event-stream"), (b"retry-after", b"2")]
    assert find_header(headers, b"content-type") == b"text/event-stream"
    assert find_header(headers, b"retry-after") == b"2"
    assert find_header(headers, b"x-missing") is None
