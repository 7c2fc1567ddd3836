"""The first chunk's fast path (one whole ``data: <JSON object>`` event, parsed once) answers
what the general reading answers: the same first-event verdict, framing check and rewritten
bytes, and leaves each stream rewriter in the same state."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import from_json

from akgate.routing._metadata import (
    ChatStreamRewriter,
    MessagesStreamRewriter,
    ResponsesStreamRewriter,
)
from akgate.routing._stream_check import first_event, has_bad_block, single_json_event

REWRITERS = (ChatStreamRewriter, ResponsesStreamRewriter, MessagesStreamRewriter)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from(
        [
            "error",
            "usage",
            "[DONE]",
            "response.created",
            "response.completed",
            "response.failed",
            "message_start",
            "message_delta",
            "message_stop",
            "é",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["usage", "error", "type", "response", "message", "output_tokens"]),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=8,
)
objects = st.dictionaries(
    st.sampled_from(
        ["type", "usage", "error", "choices", "id", "response", "message", "sequence_number"]
    ),
    values,
    max_size=5,
)


@st.composite
def first_chunks(draw: st.DrawFn) -> bytes:
    """Mostly one whole ``data:`` event of a JSON object, sometimes something near it."""
    spaced = draw(st.booleans())
    text = json.dumps(
        draw(objects),
        separators=(", ", ": ") if spaced else (",", ":"),
        ensure_ascii=draw(st.booleans()),
    ).encode()
    payload = draw(st.sampled_from([text, text, text, b"[DONE]", b"[1]", b"{", text + b"\r"]))
    prefix = draw(st.sampled_from([b"data: ", b"data: ", b"data:", b"event: x\ndata: "]))
    suffix = draw(st.sampled_from([b"\n\n", b"\n\n", b"\n", b"\n\ndata: {}\n\n", b"\r\n\r\n"]))
    return prefix + payload + suffix


def state(rewriter: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(rewriter).items() if k != "finalize"}


@settings(max_examples=400, deadline=None)
@given(first_chunks())
def test_single_json_event_is_a_complete_ok_first_event(chunk: bytes) -> None:
    obj = single_json_event(chunk)
    if obj is None:
        return
    assert first_event(chunk) == "ok"
    assert not has_bad_block(chunk)
    assert obj == from_json(chunk[6:-2])
    assert chunk.count(b"\n\n") == 1
    assert chunk.endswith(b"\n\n")


@settings(max_examples=400, deadline=None)
@given(first_chunks(), st.sampled_from(REWRITERS))
def test_feed_event_matches_feed(chunk: bytes, kind: Any) -> None:
    obj = single_json_event(chunk)
    if obj is None:
        return
    finalize = lambda usage: {"usage_seen": usage}  # noqa: E731
    general, fast = kind(finalize, "p"), kind(finalize, "p")
    assert fast.feed_event(chunk, obj) == general.feed(chunk)
    assert state(fast) == state(general)
    # The rest of the stream goes on alike.
    tail = b'data: {"type":"message_stop","choices":[],"usage":{"prompt_tokens":1}}\n\n'
    assert fast.feed(tail) == general.feed(tail)
    assert fast.close() == general.close()
    assert state(fast) == state(general)


def test_single_json_event_refuses_what_it_cannot_vouch_for() -> None:
    assert single_json_event(b'data: {"a":1}\n\n') == {"a": 1}
    for chunk in (
        b'data: {"a":1}\n',  # no blank line yet
        b'data: {"a":1}\n\ndata: {}\n\n',  # two events
        b'data:{"a":1}\n\n',  # no space: the general reading
        b'data: {"a":1}\r\n\r\n',
        b"data: [1]\n\n",
        b"data: [DONE]\n\n",
        b"data: {\n\n",
        b': ping\n\ndata: {"a":1}\n\n',
    ):
        assert single_json_event(chunk) is None, chunk
