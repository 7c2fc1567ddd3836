"""Memory and CPU bounds of the core toolkit: SSE framing and the per-request warnings."""

from __future__ import annotations

import time

import pytest

from akgate.context import MAX_WARNINGS, RequestContext
from akgate.sse import MAX_EVENT_SIZE, SSEEvent, SSEEventTooLarge, SSEParser


def test_line_that_never_ends_is_refused_not_held() -> None:
    parser = SSEParser(max_event_size=1000)
    parser.feed(b"data: " + b"x" * 500)
    for _ in range(4):
        parser.feed(b"x" * 100)  # 900 characters held: still under the cap
    with pytest.raises(SSEEventTooLarge):
        parser.feed(b"x" * 200)
    assert parser._line == []


def test_event_that_never_dispatches_is_refused() -> None:
    parser = SSEParser(max_event_size=1000)
    for _ in range(30):
        parser.feed(b"data: " + b"y" * 20 + b"\n")  # data lines, never a blank line
    with pytest.raises(SSEEventTooLarge):
        parser.feed(b"data: " + b"y" * 500 + b"\n")


def test_one_huge_line_in_one_chunk_is_refused() -> None:
    parser = SSEParser(max_event_size=1000)
    with pytest.raises(SSEEventTooLarge):
        parser.feed(b"data: " + b"z" * 2000 + b"\n\n")


def test_events_under_the_cap_still_parse_and_reset_the_count() -> None:
    parser = SSEParser(max_event_size=100)
    events = []
    for _ in range(50):
        events += parser.feed(b"data: " + b"a" * 60 + b"\n\n")
    assert events == [SSEEvent("a" * 60)] * 50


def test_default_cap_is_generous() -> None:
    assert MAX_EVENT_SIZE == 16 * 1024 * 1024
    assert SSEParser().feed(b"data: " + b"b" * 1_000_000 + b"\n\n")[0].data == "b" * 1_000_000


def test_bad_cap_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="max_event_size"):
        SSEParser(max_event_size=0)


def test_warnings_are_capped_and_stay_cheap() -> None:
    ctx = RequestContext()
    t0 = time.perf_counter()
    for i in range(50_000):
        ctx.warn("unsupported_field", f"input[{i}]", "dropped")
    assert time.perf_counter() - t0 < 1.0  # was quadratic: one scan of every warning per call
    assert len(ctx.warnings) == MAX_WARNINGS
    ctx.warn("unsupported_field", "input[0]", "again")
    assert len(ctx.warnings) == MAX_WARNINGS
