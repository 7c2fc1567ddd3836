"""``GatewayApp``'s one-step entry (``akgate._front.Front``) does what the composition it skips
does: ``RequestBodyTimeout(SSEKeepAlive(app))`` with ``send`` split by ``piecewise``."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akgate import RequestBodyTimeout, SSEKeepAlive, gateway
from akgate._front import Front
from akgate._pieces import piecewise
from akgate._types import ASGIApp, Message, Receive, Scope, Send
from akgate.context import get_context, request_context
from tests.support.asgi import http_scope

PIECE = 8  # small pieces, so that bodies of a few bytes are split


def composed(app: ASGIApp, *, timeout: float = 60, interval: float = 60) -> ASGIApp:
    """The rule: the layers as gateway() composed them before, with their pieces."""
    bound = RequestBodyTimeout(SSEKeepAlive(app, interval=interval), timeout=timeout)

    async def entry(scope: Scope, receive: Receive, send: Send) -> None:
        await bound(scope, receive, piecewise(send, PIECE))

    return entry


def fused(app: ASGIApp, *, timeout: float = 60, interval: float = 60) -> Front:
    heartbeat = SSEKeepAlive(app, interval=interval)
    bound = RequestBodyTimeout(heartbeat, timeout=timeout)
    return Front(bound, heartbeat, functools.partial(piecewise, piece=PIECE), PIECE)


def normalized(sent: list[Message]) -> list[Message]:
    """Generated request ids differ between two runs; everything else must not."""
    out = []
    for message in sent:
        if "headers" in message:
            headers = [
                (k, b"<generated>" if k == b"x-request-id" and v.startswith(b"req_") else v)
                for k, v in message["headers"]
            ]
            message = {**message, "headers": headers}
        out.append(message)
    return out


def scripted(script: dict[str, Any], seen: list[Any]) -> ASGIApp:
    """An inner app that reads the body (or not), records what it saw, and sends the script."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        if script["read"]:
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
        ctx = get_context(scope)
        seen.append(
            (
                scope["path"],
                scope.get("raw_path"),
                body,
                None if ctx is None else (ctx.route, ctx.error_format, ctx.request_id[:4]),
            )
        )
        headers = []
        if script["content_type"] is not None:
            headers.append((b"content-type", script["content_type"]))
        if script["own_id"]:
            headers.append((b"X-Request-ID", b"app-id"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for size, more in script["bodies"]:
            await send({"type": "http.response.body", "body": b"e" * size, "more_body": more})
        if script["trailers"]:
            await send({"type": "http.response.trailers", "headers": [], "more_trailers": False})
        if script["raise"]:
            raise RuntimeError("inner app failed")

    return app


PATHS = st.sampled_from(
    [
        "/v1/chat/completions",
        "/v1/chat/completions/",
        "/v1/responses",
        "/v1/messages",
        "/v1/models",
        "/v1/unknown",
        "/v1//chat/completions",
        "/V1/chat/completions",
        "/uploads/file",
    ]
)
FRAMING = st.sampled_from(["length", "zero", "zero spaced", "chunked", "none"])
SCRIPTS = st.fixed_dictionaries(
    {
        "read": st.booleans(),
        "content_type": st.sampled_from(
            [None, b"application/json", b"text/event-stream", b"Text/Event-Stream; charset=utf-8"]
        ),
        "own_id": st.booleans(),
        "bodies": st.lists(st.tuples(st.integers(0, 3 * PIECE), st.booleans()), max_size=4),
        "trailers": st.booleans(),
        "raise": st.booleans(),
    }
)


class AsObject:
    """An app as a layer object (the front calls such an app as a bound method)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


async def _one(
    make: Any, script: dict[str, Any], scope: Scope, body: bytes, as_object: bool = False
) -> tuple[list[Message], list[Any], str | None]:
    seen: list[Any] = []
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    chunks = [body[: len(body) // 2], body[len(body) // 2 :]]

    async def receive() -> Message:
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
        await anyio.sleep_forever()
        raise AssertionError

    error = None
    try:
        with anyio.fail_after(5):
            app = scripted(script, seen)
            await make(AsObject(app) if as_object else app)(scope, receive, send)
    except RuntimeError as exc:
        error = str(exc)
    return normalized(sent), seen, error


@settings(max_examples=300, deadline=None)
@given(
    PATHS,
    FRAMING,
    st.booleans(),
    st.sampled_from(["GET", "POST"]),
    st.booleans(),
    SCRIPTS,
    st.sampled_from(["", "/api"]),
    st.booleans(),
)
async def test_the_front_sends_and_forwards_what_the_composition_does(
    path: str,
    framing: str,
    incoming_id: bool,
    method: str,
    with_context: bool,
    script: dict[str, Any],
    root_path: str,
    as_object: bool,
) -> None:
    body = b'{"model": "m"}'
    headers = [(b"content-type", b"application/json")]
    if framing == "length":
        headers.append((b"content-length", str(len(body)).encode()))
    elif framing.startswith("zero"):
        headers.append((b"content-length", b" 0 " if framing == "zero spaced" else b"0"))
        body = b""
    elif framing == "chunked":
        headers.append((b"transfer-encoding", b"chunked"))
    else:
        body = b""
    if incoming_id:
        headers.append((b"x-request-id", b"client-id"))
    results = []
    for make in (composed, fused):
        scope = http_scope(path, method=method, headers=headers, root_path=root_path)
        if with_context:  # an akgate layer outside made the context (it adds the request id)
            scope, _, _ = request_context(scope, _never)
        results.append(await _one(make, script, scope, body, as_object))
    assert results[0] == results[1]


async def _never(message: Message) -> None:  # pragma: no cover - never called
    raise AssertionError


@pytest.mark.parametrize("outer_context", [False, True], ids=["own-context", "outer-context"])
async def test_the_common_request_takes_the_one_step(
    monkeypatch: pytest.MonkeyPatch, outer_context: bool
) -> None:
    # Neither the composition, nor the heartbeat layer's own call, nor a pieces wrapper for a
    # JSON answer; also when an outer layer made the context (akgate serve's operations layers),
    # whose layer then adds the X-Request-ID.
    calls: list[str] = []

    async def taken(self: Any, scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(type(self).__name__)
        raise AssertionError

    monkeypatch.setattr(SSEKeepAlive, "__call__", taken)
    monkeypatch.setattr(RequestBodyTimeout, "__call__", taken)

    def pieces(send: Send) -> Send:
        calls.append("pieces")
        return send

    seen: list[Any] = []
    script = {
        "read": True,
        "content_type": b"application/json",
        "own_id": False,
        "bodies": [(5, False)],
        "trailers": False,
        "raise": False,
    }
    heartbeat = SSEKeepAlive(scripted(script, seen), interval=60)
    front = Front(RequestBodyTimeout(heartbeat, timeout=60), heartbeat, pieces, PIECE)
    scope = http_scope(headers=[(b"content-length", b"2")])
    if outer_context:
        scope, _, _ = request_context(scope, _never)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    await front(scope, receive, send)
    assert calls == []
    assert seen[0][3][0][1].spec.name == "chat_completions"  # the resolution left for the inside
    own_id = [] if outer_context else [b"x-request-id"]
    assert [k for k, _ in sent[0]["headers"]] == [b"content-type", *own_id]


def test_gateway_uses_the_front_only_with_both_layers() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:  # pragma: no cover
        pass

    options: dict[str, Any] = {"auth": False, "validation": False, "routing": False}
    assert gateway(app, **options)._front is not None  # type: ignore[attr-defined]
    for off in ({"body_timeout": None}, {"sse_heartbeat": None}):
        assert gateway(app, **options, **off)._front is None  # type: ignore[attr-defined]


async def _paused_stream(scope: Scope, receive: Receive, send: Send) -> None:
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"text/event-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
    await anyio.sleep(0.25)
    await send({"type": "http.response.body", "body": b"data: " + b"x" * 20 + b"\n\n"})


async def _run(app: Any, scope: Scope, chunks: list[bytes], hang: bool) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks) or hang}
        await anyio.sleep_forever()
        raise AssertionError

    with anyio.fail_after(5):
        await app(scope, receive, send)
    return sent


async def test_an_idle_event_stream_gets_heartbeats_and_pieces_as_composed() -> None:
    streams = []
    for make in (composed, fused):
        scope = http_scope(headers=[(b"content-length", b"2"), (b"x-request-id", b"r")])
        sent = await _run(make(_paused_stream, interval=0.1), scope, [b"{}"], False)
        assert sent[0] == {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream"), (b"x-request-id", b"r")],
        }
        assert all(len(m["body"]) <= PIECE for m in sent[1:])
        assert not sent[-1]["more_body"]
        stream = b"".join(m["body"] for m in sent[1:])
        assert b": keep-alive\n\n" in stream  # (how many depends on the clock)
        streams.append(stream.replace(b": keep-alive\n\n", b""))
    assert streams[0] == streams[1] == b"data: 1\n\ndata: " + b"x" * 20 + b"\n\n"


@pytest.mark.parametrize("with_context", [False, True], ids=["own-context", "outer-context"])
async def test_a_body_that_does_not_arrive_gets_the_same_408(with_context: bool) -> None:
    results = []
    for make in (composed, fused):
        scope = http_scope(headers=[(b"content-length", b"100"), (b"x-request-id", b"r")])
        if with_context:  # made outside (the outer layer's wrapper adds the request id)
            scope, _, _ = request_context(scope, _never)
        results.append(await _run(make(_paused_stream, timeout=0.05), scope, [b"{"], True))
    assert results[0] == results[1]
    assert results[1][0]["status"] == 408
    if not with_context:
        assert (b"x-request-id", b"r") in results[1][0]["headers"]
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0


def test_other_event_loops_take_the_composition() -> None:
    async def main() -> list[Message]:
        scope = http_scope(headers=[(b"content-length", b"2"), (b"x-request-id", b"r")])
        return await _run(fused(_paused_stream, interval=0.1), scope, [b"{}"], False)

    sent = anyio.run(main, backend="trio")
    assert sent[0]["status"] == 200
    assert (b"x-request-id", b"r") in sent[0]["headers"]
    assert b": keep-alive\n\n" in b"".join(m["body"] for m in sent[1:])


async def _split_event_then_more(scope: Scope, receive: Receive, send: Send) -> None:
    """Half an event, a pause, the rest of it; then a pause between events; then the end."""
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"text/event-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"data: ab", "more_body": True})
    await anyio.sleep(0.25)
    await send({"type": "http.response.body", "body": b"cd\n\n", "more_body": True})
    await anyio.sleep(0.25)
    await send({"type": "http.response.body", "body": b"data: end\n\n", "more_body": False})


async def test_heartbeats_come_only_between_events_and_stop_with_the_response() -> None:
    for make in (composed, fused):
        scope = http_scope(headers=[(b"content-length", b"2")])
        sent = await _run(make(_split_event_then_more, interval=0.1), scope, [b"{}"], False)
        count = len(sent)
        stream = b"".join(m["body"] for m in sent[1:])
        assert stream.startswith(b"data: abcd\n\n: keep-alive\n\n"), make
        assert stream.replace(b": keep-alive\n\n", b"") == b"data: abcd\n\ndata: end\n\n"
        await anyio.sleep(0.3)
        assert len(sent) == count  # nothing after the end of the response


async def _answers_before_reading(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await anyio.sleep(0.2)  # longer than the bound: a started response is not cut
    await send({"type": "http.response.body", "body": b"late", "more_body": False})


async def test_a_started_response_is_not_cut_by_the_bound() -> None:
    results = []
    for make in (composed, fused):
        scope = http_scope(headers=[(b"content-length", b"100"), (b"x-request-id", b"r")])
        results.append(await _run(make(_answers_before_reading, timeout=0.05), scope, [], True))
    assert results[0] == results[1]
    assert results[1][0]["status"] == 200
    assert b"".join(m.get("body", b"") for m in results[1]) == b"late"


async def _stream_left_open(scope: Scope, receive: Receive, send: Send) -> None:
    while (await receive()).get("more_body"):
        pass
    headers = [(b"content-type", b"text/event-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
    raise RuntimeError("gone mid-stream")


async def test_no_heartbeat_after_the_app_returned_mid_stream() -> None:
    for make in (composed, fused):
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        async def receive() -> Message:
            return {"type": "http.request", "body": b"{}", "more_body": False}

        scope = http_scope(headers=[(b"content-length", b"2")])
        with pytest.raises(RuntimeError, match="mid-stream"):
            await make(_stream_left_open, interval=0.05)(scope, receive, send)
        await anyio.sleep(0.2)
        assert b"".join(m.get("body", b"") for m in sent) == b"data: 1\n\n", make


_NAMES = st.sampled_from(
    [b"content-type", b"Content-Type", b"X-Request-ID", b"x-request-id", b"x-request-ie", b"etag"]
)
_VALUES = st.sampled_from([b"text/event-stream", b"application/json; x=1", b"r-1", b""])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=5))
def test_one_pass_over_the_start_headers_reads_what_the_two_rules_read(
    headers: list[tuple[bytes, bytes]],
) -> None:
    from akgate._keepalive import _is_event_stream, _is_sse
    from akgate.context import start_with_request_id, with_request_id

    message: dict[str, Any] = {"type": "http.response.start", "status": 200, "headers": headers}
    original = list(headers)
    got, content_type = start_with_request_id(message, b"req-x")
    assert got == with_request_id(message, b"req-x")
    assert (content_type is not None and _is_event_stream(content_type)) == _is_sse(message)
    assert message["headers"] == original  # the inner app's message is never changed
