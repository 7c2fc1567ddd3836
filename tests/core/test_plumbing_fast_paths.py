"""The request plumbing's shortcuts give what the general rule gives, for any input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akgate._asgi import read_body, scope_with_body
from akgate._types import Message
from akgate.errors import GatewayError

NAMES = st.sampled_from([b"content-length", b"transfer-encoding", b"host", b"x-a", b"accept"])
VALUES = st.sampled_from([b"0", b"3", b"5", b"12", b"chunked", b"x", b""])
HEADERS = st.lists(st.tuples(NAMES, VALUES), max_size=6)
BODIES = st.sampled_from([b"", b"abc", b"hello", b"x" * 12])


def rewritten(headers: list[tuple[bytes, bytes]], body: bytes) -> list[tuple[bytes, bytes]]:
    """The general rule: drop every Content-Length and Transfer-Encoding, announce the body."""
    kept = [(k, v) for k, v in headers if k not in (b"content-length", b"transfer-encoding")]
    return [*kept, (b"content-length", str(len(body)).encode())]


def as_sent(headers: list[tuple[bytes, bytes]]) -> tuple[list[Any], list[Any]]:
    """The other headers in order, and the framing headers (their place does not matter)."""
    framing = (b"content-length", b"transfer-encoding")
    return [h for h in headers if h[0] not in framing], sorted(
        h for h in headers if h[0] in framing
    )


@settings(max_examples=300, deadline=None)
@given(HEADERS, BODIES, st.booleans())
def test_scope_with_body_matches_the_general_rule(
    headers: list[tuple[bytes, bytes]], body: bytes, with_path: bool
) -> None:
    scope = {"type": "http", "path": "/v1/responses", "headers": headers, "root_path": ""}
    original = list(headers)
    new = scope_with_body(scope, body, path="/v1/chat/completions" if with_path else None)
    assert new is not scope  # a copy a layer may add keys to
    assert as_sent(new["headers"]) == as_sent(rewritten(headers, body))
    assert headers == original  # the caller's list is never changed
    assert new["path"] == ("/v1/chat/completions" if with_path else "/v1/responses")


def test_a_body_forwarded_as_it_came_keeps_its_headers() -> None:
    headers = [(b"host", b"x"), (b"content-length", b"2")]
    new = scope_with_body({"type": "http", "headers": headers}, b"{}")
    assert new["headers"] is headers  # nothing to rewrite: no new list per layer


def chunks_of(body: bytes, cuts: list[int]) -> list[Message]:
    points = sorted({min(c, len(body)) for c in cuts})
    pieces = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    return [
        {"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
        for i, piece in enumerate(pieces)
    ]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40), st.lists(st.integers(0, 40), max_size=4), st.integers(0, 45))
async def test_read_body_in_one_or_many_messages(body: bytes, cuts: list[int], cap: int) -> None:
    messages = chunks_of(body, cuts)

    async def receive() -> Message:
        return messages.pop(0)

    scope: dict[str, Any] = {"type": "http", "headers": []}
    if len(body) > cap:
        with pytest.raises(GatewayError) as info:
            await read_body(scope, receive, max_size=cap)
        assert info.value.code == "payload_too_large"
    else:
        got = await read_body(scope, receive, max_size=cap)
        assert got == body
        assert type(got) is bytes


async def test_read_body_returns_bytes_for_a_bytearray_body() -> None:
    async def receive() -> Message:
        return {"type": "http.request", "body": bytearray(b"ab"), "more_body": False}

    got = await read_body({"type": "http", "headers": []}, receive)
    assert got == b"ab"
    assert type(got) is bytes
