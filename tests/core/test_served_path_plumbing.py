"""The per-request plumbing's shortcuts give what the general rule gives: the request context
built positionally, the request id and error envelope in one context variable, and the
heartbeat layer's event-stream check."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from akgate._asgi import find_header
from akgate._keepalive import _is_sse
from akgate._types import Message
from akgate.context import (
    RequestContext,
    current_error_format,
    current_request_id,
    request_context,
)
from tests.support.asgi import http_scope


async def _send(message: Message) -> None:  # pragma: no cover - never called
    pass


def test_a_new_context_is_the_default_one_with_its_id_and_envelope() -> None:
    # request_context builds the context positionally: every field where the keyword form puts it.
    for path, headers, fmt in [
        ("/v1/chat/completions", [], "auriko"),
        ("/v1/messages", [(b"x-request-id", b"abc")], "anthropic"),
    ]:
        _, _, ctx = request_context(http_scope(path, headers=headers), _send)
        expected = RequestContext(request_id=ctx.request_id, started=ctx.started, error_format=fmt)
        assert dataclasses.asdict(ctx) == dataclasses.asdict(expected)
        assert [f.name for f in dataclasses.fields(ctx)] == [
            f.name for f in dataclasses.fields(expected)
        ]
        assert ctx.warnings is not expected.warnings  # fresh lists and dicts per request


def test_the_request_id_and_envelope_are_the_current_ones() -> None:
    _, _, ctx = request_context(
        http_scope("/v1/messages", headers=[(b"x-request-id", b"r-1")]), _send
    )
    assert ctx.request_id == "r-1"
    assert current_request_id() == "r-1"
    assert current_error_format() == ("anthropic", "r-1")
    _, _, ctx = request_context(http_scope(), _send)
    assert current_request_id() == ctx.request_id
    assert current_error_format() == ("auriko", ctx.request_id)


def _is_sse_by_the_rule(message: Message) -> bool:
    value = find_header(message.get("headers", ()), b"content-type")
    return value is not None and value.split(b";")[0].strip().lower() == b"text/event-stream"


_names = st.sampled_from(
    [b"content-type", b"Content-Type", b"CONTENT-TYPE", b"content-typ", b"x-type", b"etag"]
)
_values = st.sampled_from(
    [
        b"text/event-stream",
        b"Text/Event-Stream; charset=utf-8",
        b" text/event-stream ;x",
        b"application/json",
        b"text/event-streams",
        b"",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_names, _values), max_size=5))
def test_the_event_stream_check_matches_find_header(headers: list[tuple[bytes, bytes]]) -> None:
    message: dict[str, Any] = {"type": "http.response.start", "status": 200, "headers": headers}
    assert _is_sse(message) == _is_sse_by_the_rule(message)


async def test_a_json_answer_sets_up_no_heartbeat_state(monkeypatch: Any) -> None:
    import akgate._keepalive as keepalive
    from tests.support.asgi import drive

    begun: list[str] = []
    real_begin, real_stop = keepalive._TimerStream._begin, keepalive._TimerStream.stop

    def begin(self: Any) -> None:
        begun.append("begin")
        real_begin(self)

    def stop(self: Any) -> None:
        begun.append("stop")
        real_stop(self)

    monkeypatch.setattr(keepalive._TimerStream, "_begin", begin)
    monkeypatch.setattr(keepalive._TimerStream, "stop", stop)

    def app_answering(content_type: bytes) -> Any:
        async def app(scope: Any, receive: Any, send: Any) -> None:
            headers = [(b"content-type", content_type)]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"data: {}\n\n"})

        return app

    await drive(keepalive.SSEKeepAlive(app_answering(b"application/json")), http_scope(), b"{}")
    assert begun == []  # neither the stream's state nor its stop: a JSON answer has no timer
    await drive(keepalive.SSEKeepAlive(app_answering(b"text/event-stream")), http_scope(), b"{}")
    assert begun[0] == "begin"
    assert "stop" in begun


_number_text = st.text(alphabet="0123456789eE+-. ,[]", max_size=700).map(str.encode)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        _number_text,
        st.builds(lambda n, tail: b"1" * n + tail, st.integers(300, 320), _number_text),
    )
)
def test_one_translation_finds_what_the_two_found(body: bytes) -> None:
    import akgate._asgi as asgi

    by_the_rule = asgi._LONG_DIGIT_RUN in body.translate(
        asgi._DIGITS_AND_E
    ) or asgi._may_have_huge_exponent(body)
    # It may only say "maybe" more often (the parsed value is then walked, which is exact).
    assert asgi._may_overflow(body) >= by_the_rule
    if b"+" not in body:
        assert asgi._may_overflow(body) == by_the_rule


def test_the_chat_rewriter_sets_every_base_attribute() -> None:
    # ChatStreamRewriter starts from its base's state: every base attribute, the same values.
    from akgate.routing._metadata import ChatStreamRewriter, _StreamRewriter

    def finalize(usage: Any) -> dict[str, Any]:  # pragma: no cover - never called
        return {}

    base = vars(_StreamRewriter(finalize, "p", max_event_size=7))
    chat = vars(ChatStreamRewriter(finalize, "p", max_event_size=7))
    assert {k: chat[k] for k in base} == base


async def test_the_timer_stream_sets_every_base_attribute() -> None:
    # _TimerStream starts from its base's state: every base attribute, the same values.
    import asyncio

    from akgate._keepalive import _Stream, _TimerStream

    loop = asyncio.get_running_loop()
    timer = _TimerStream(_send, 2.0, loop)
    base = object.__new__(_TimerStream)
    _Stream.__init__(base, _send, 2.0, loop.time)
    for name in _Stream.__slots__:
        if hasattr(base, name):
            assert getattr(timer, name) == getattr(base, name), name


@given(st.integers(1, 2**48 - 1))
def test_a_request_id_counter_formats_as_twelve_hex_digits(count: int) -> None:
    # Ids count from 2**48 so that hex() gives the 12 digits the format spec gave.
    from akgate.context import _ID_BASE

    assert hex(_ID_BASE + count)[3:] == f"{count:012x}"


def test_request_ids_are_the_prefix_and_a_counter() -> None:
    from akgate.context import _ID_PREFIX, new_request_id

    first, second = new_request_id(), new_request_id()
    _, _, ctx = request_context(http_scope(), _send)
    ids = [first, second, ctx.request_id]
    assert all(i.startswith(_ID_PREFIX) and len(i) == len(_ID_PREFIX) + 12 for i in ids)
    counts = [int(i[len(_ID_PREFIX) :], 16) for i in ids]
    assert counts[1] == counts[0] + 1
    assert counts[2] == counts[1] + 1
