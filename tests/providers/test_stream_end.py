"""The exchange's stream watch (``StreamEnd``) against the rule it replaces: an ``SSEParser`` fed
every chunk, each event observed. Same end and error flags after every chunk, the same chunk
raising ``SSEEventTooLarge``, whatever the events and however the bytes are cut."""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akgate.providers._stream_end import MARKERS, StreamEnd
from akgate.providers._upstream import _Exchange
from akgate.sse import SSEEventTooLarge, SSEParser

_EVENTS = [
    b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n',
    b"data: [DONE]\n\n",
    b"data:[DONE]\n\n",
    b'data: {"error":{"message":"boom"}}\n\n',
    b'data: {"error"\ndata: :1}\n\n',
    b"data: [DO\ndata: NE]\n\n",
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta"}\n\n',
    b'event: response.completed\ndata: {"type":"response.completed"}\n\n',
    b'data: {"type":"response.failed","response":{}}\n\n',
    b'data: {"type":"response.incomplete"}\n\n',
    b'data: {"type":"response.created","response":{"error":null}}\n\n',
    b"event: error\ndata: {}\n\n",
    b'data: {"type":"error"}\n\n',
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    b'event: ping\ndata: {"type":"message_stop"}\n\n',
    b": keep-alive\n\n",
    b"\n\n\n",
    b"id: 7\nretry: 100\ndata: x\n\n",
    b"data: \xe2\x82\xac caf\xc3\xa9 \xff\xfe\n\n",
    b"data: [DONE]\r\n\r\n",
    b"data: x\r\rdata: [DONE]\r\r",
    b"data: " + b"y" * 70 + b"\n\n",
    b"data: " + b"z" * 30 + b"\ndata: " + b"z" * 30 + b"\n\n",
    b"data: partial without end",
]


def _observer(kind: str) -> Any:
    return SimpleNamespace(sse_kind=kind, terminated=False, errored=False)


def _run(feed: Any, chunks: list[bytes], kind: str) -> list[tuple[bool, bool] | str]:
    """The exchange's flags after each chunk, or ``"too large"`` where feeding raised."""
    state = _observer(kind)
    seen: list[tuple[bool, bool] | str] = []
    for chunk in chunks:
        try:
            events = feed(chunk)
        except SSEEventTooLarge:
            seen.append("too large")
            return seen
        for event in events:
            _Exchange._observe(state, event.event, event.data)  # type: ignore[arg-type]
        seen.append((state.terminated, state.errored))
    return seen


def _cuts(data: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({0, len(data), *(p % (len(data) + 1) for p in points)})
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@settings(max_examples=400, deadline=None)
@given(
    kind=st.sampled_from(sorted(MARKERS)),
    events=st.lists(st.sampled_from(_EVENTS), max_size=12),
    points=st.lists(st.integers(0, 2000), max_size=12),
    max_event_size=st.sampled_from([60, 100, 16 * 1024 * 1024]),
)
def test_same_flags_and_same_overflow_as_the_parser(
    kind: str, events: list[bytes], points: list[int], max_event_size: int
) -> None:
    chunks = _cuts(b"".join(events), points)
    old = _run(SSEParser(max_event_size=max_event_size).feed, chunks, kind)
    new = _run(StreamEnd(MARKERS[kind], max_event_size=max_event_size).feed, chunks, kind)
    assert new == old


@pytest.fixture
def fed(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """What is handed to ``SSEParser.feed`` during the test."""
    chunks: list[bytes] = []
    real = SSEParser.feed

    def spy(self: SSEParser, chunk: bytes) -> Any:
        chunks.append(chunk)
        return real(self, chunk)

    monkeypatch.setattr(SSEParser, "feed", spy)
    return chunks


@pytest.mark.parametrize("kind", sorted(MARKERS))
def test_events_without_a_marker_are_not_parsed(kind: str, fed: list[bytes]) -> None:
    watch = StreamEnd(MARKERS[kind])
    delta = b'data: {"choices":[{"index":0,"delta":{"content":"tok"}}]}\n\n'
    for _ in range(20):
        assert watch.feed(delta) == []
    ended = watch.feed(b"data: [DONE]\n\n")
    assert [event.data for event in ended] == ["[DONE]"]
    assert fed == [b"data: [DONE]\n\n"]  # the 20 deltas were passed over


def test_an_endless_event_is_cut_as_the_parser_cuts_it() -> None:
    watch = StreamEnd(MARKERS["chat"], max_event_size=100)
    watch.feed(b"data: " + b"a" * 50)
    with pytest.raises(SSEEventTooLarge):
        watch.feed(b"a" * 60)


def test_of_a_chunk_with_many_events_only_the_marked_ones_are_parsed(fed: list[bytes]) -> None:
    delta = b'data: {"choices":[{"index":0,"delta":{"content":"tok"}}]}\n\n'
    ended = StreamEnd(MARKERS["chat"]).feed(delta * 20 + b"data: [DONE]\n\n")
    assert [event.data for event in ended] == ["[DONE]"]
    assert fed == [b"data: [DONE]\n\n"]


def test_every_marked_event_of_a_chunk_is_read() -> None:
    # The first "error" is a field of the created event; the error event comes after it.
    chunk = (
        b'event: response.created\ndata: {"type":"response.created","response":{"error":null}}'
        b'\n\nevent: response.output_text.delta\ndata: {"type":"response.output_text.delta"}\n\n'
        b'event: error\ndata: {"type":"error","message":"x"}\n\n'
    )
    state = _observer("responses")
    for event in StreamEnd(MARKERS["responses"]).feed(chunk):
        _Exchange._observe(state, event.event, event.data)  # type: ignore[arg-type]
    assert state.terminated


def test_an_event_in_many_small_chunks_is_kept_in_place() -> None:
    watch = StreamEnd(MARKERS["chat"])
    watch.feed(b"data: ")
    kept = watch._rest
    for _ in range(200):
        assert watch.feed(b"x" * 50) == []
    assert watch._rest is kept  # appended to, not copied per chunk
    assert len(kept) == 6 + 200 * 50
    assert watch.feed(b"\n\n") == []


def test_an_event_end_split_between_two_chunks_is_seen() -> None:
    watch = StreamEnd(MARKERS["chat"])
    assert watch.feed(b"data: [DONE]\n") == []
    assert [event.data for event in watch.feed(b"\ndata: x")] == ["[DONE]"]
