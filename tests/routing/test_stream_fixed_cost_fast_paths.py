"""Fast paths of the per-stream work of routing, checked against the rules they shortcut: the
forced ``stream_options`` of a chat stream, and the native cancel scope's entry (its task and
anyio's innermost scope, read without looking the running loop up again)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import akgate.routing._cancel as cancel_module
import akgate.routing._rewrite as rewrite_module
from akgate.routing import Catalog
from akgate.routing._middleware import Routing
from akgate.routing._rewrite import provider_payload
from akgate.routing._strategies import Needs


class _NoABCCheck(type):
    def __instancecheck__(cls, instance: Any) -> bool:
        raise AssertionError("the Mapping ABC was consulted")


class _ForbiddenMapping(metaclass=_NoABCCheck):
    """Stands in for ``Mapping``: any isinstance check against it fails the test."""


def _route() -> Any:
    routing = Routing(lambda s, r, c: None, catalog=Catalog.demo("app"))  # type: ignore[arg-type, return-value]
    return routing._routes["demo"][0]


def _stream_body(options: Any, route: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"model": "demo", "messages": [], "stream": True}
    if options is not _ABSENT:
        payload["stream_options"] = options
    body, _ = provider_payload(
        payload,
        "chat_completions",
        route,
        Needs(),
        stream=True,
        strip_blocked=False,
        known_providers=frozenset(),
    )
    return body


_ABSENT = object()

_options = st.one_of(
    st.just(_ABSENT),
    st.none(),
    st.integers(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.sampled_from(["include_usage", "x", "y"]), st.integers() | st.booleans()),
    st.dictionaries(st.sampled_from(["include_usage", "x"]), st.integers()).map(MappingProxyType),
)


@settings(max_examples=200, deadline=None)
@given(_options)
def test_stream_options_match_the_mapping_rule(options: Any) -> None:
    route = _route()
    body = _stream_body(options, route)
    given_options = None if options is _ABSENT else options
    kept = given_options if isinstance(given_options, Mapping) else {}
    assert body["stream_options"] == {**kept, "include_usage": True}
    assert list(body["stream_options"]) == list({**kept, "include_usage": True})


@pytest.mark.parametrize("options", [_ABSENT, None, {"include_usage": False, "x": 1}])
def test_usual_stream_options_skip_the_mapping_abc(
    options: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    route = _route()
    monkeypatch.setattr(rewrite_module, "Mapping", _ForbiddenMapping)
    body = _stream_body(options, route)
    expected = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    assert body["stream_options"] == expected


needs_native = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="the native scope needs Task.uncancel (Python 3.11+)"
)


@needs_native
async def test_scope_entry_reads_its_task_and_anyio_scope_without_lookups(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    states = cancel_module._TASK_STATES
    assert states is not None
    real_current_task = asyncio.current_task

    def current_task(loop: asyncio.AbstractEventLoop | None = None) -> Any:
        assert loop is not None, "the running loop was looked up again"
        return real_current_task(loop)

    with anyio.CancelScope() as outer:
        task = asyncio.current_task()
        expected = states.get(task).cancel_scope  # the rule: anyio's innermost scope
        assert expected is outer
        monkeypatch.setattr(cancel_module, "_current_task", current_task)
        # (Set on the instance, and removed before anyio's own scope exits: anyio uses it.)
        states.get = lambda *a: pytest.fail("WeakKeyDictionary.get")
        try:
            scope = cancel_module.open_scope()
            with scope:
                assert isinstance(scope, cancel_module.TaskScope)
                assert scope._task is task
                assert scope._anyio_scope is expected
                await asyncio.sleep(0)
        finally:
            del states.get
    assert not scope.cancelled_caught


@needs_native
async def test_scope_entry_in_a_task_anyio_never_saw() -> None:
    async def fresh() -> tuple[Any, Any]:
        task = asyncio.current_task()
        assert cancel_module._TASK_STATES.get(task) is None
        scope = cancel_module.open_scope()
        with scope:
            return scope._task, scope._anyio_scope

    task = asyncio.ensure_future(fresh())
    entered_task, anyio_scope = await task
    assert entered_task is task
    assert anyio_scope is None


_PIECES = [
    b'data: {"id":"c","choices":[{"delta":{"content":"a"}}],"usage":null}\n\n',
    b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}\n\n',
    b'data: {"error":{"message":"boom"}}\n\n',
    b"data: [DONE]\n\n",
    b": keep-alive\n\n",
    b"event: x\ndata: 1\n\n",
    b"not sse\n\n",
    b"\n\n",
    b"\n",
    b"data: {}\r\n\r\n",
    b"id: 7\n\n",
    b"retry: 5\n\n",
    b"data: half",
]


def _rewrite(chunks: list[bytes]) -> tuple[list[bytes], bytes, bool, bool, bool]:
    from akgate.routing._metadata import ChatStreamRewriter

    rewriter = ChatStreamRewriter(lambda usage: {"usage": usage}, "app")
    out = [rewriter.feed(chunk) for chunk in chunks]
    return out, rewriter.close(), rewriter.done, rewriter.failed, rewriter.overflowed


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(_PIECES), max_size=8),
    st.lists(st.integers(min_value=0, max_value=400), max_size=6),
    st.booleans(),
)
def test_one_event_chunks_rewrite_as_the_general_framing_does(
    pieces: list[bytes], cuts: list[int], whole_events: bool
) -> None:
    """Chunks of one event each (the fast path) or cut anywhere: the same bytes out as with the
    fast path turned off."""
    import akgate.routing._metadata as metadata

    if whole_events:
        chunks = pieces
    else:
        stream = b"".join(pieces)
        points = sorted({min(c, len(stream)) for c in cuts})
        chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    fast = _rewrite(chunks)
    saved = metadata.BLOCK_STARTS
    metadata.BLOCK_STARTS = ()  # type: ignore[misc]  # startswith(()) is never true
    try:
        general = _rewrite(chunks)
    finally:
        metadata.BLOCK_STARTS = saved  # type: ignore[misc]
    assert fast == general


def test_a_one_event_chunk_skips_the_blank_line_search(monkeypatch: pytest.MonkeyPatch) -> None:
    import akgate.routing._metadata as metadata

    def no_search(complete: bytes) -> bool:
        raise AssertionError("has_bad_block searched a one-event chunk")

    rewriter = metadata.ChatStreamRewriter(lambda usage: {}, "app")
    monkeypatch.setattr(metadata, "has_bad_block", no_search)
    chunk = _PIECES[0]
    assert rewriter.feed(chunk) is chunk
    assert rewriter.feed(b"id: 7\n\n") == b"id: 7\n\n"
    monkeypatch.undo()
    # Not SSE, as one event: still the malformed-stream error (through the general check).
    out = rewriter.feed(b"not sse\n\n")
    assert b"upstream_error" in out
    assert rewriter.overflowed
