"""Property tests for the routing stream rewriters (byte fast path and exact ``\\r`` parser).

Generated chat and Responses streams, with ``\\n`` or ``\\r\\n`` line endings, keep-alive
comments, compact or spaced JSON, are fed whole and in arbitrary byte splits: the parsed output
must not depend on the split, must end with exactly one metadata-carrying final chunk (chat) or
terminal event (Responses), and must never lose or repeat a delta. A stream cut short ends with
an explicit error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akgate.routing._metadata import ChatStreamRewriter, ResponsesStreamRewriter
from akgate.sse import SSEParser

HEAD = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
fragment = st.one_of(
    st.text(min_size=1, max_size=8),
    st.sampled_from(
        [
            "\n\n",
            "[DONE]",
            '"usage"',
            '"usage":null',
            "\r\n",
            "\r",
            "é",
            "🙂",
            "event: error",
            '"type":"error"',
            '"response.completed"',
            ": x",
        ]
    ),
)
usage_value = st.builds(
    lambda p, c: {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
    st.integers(0, 1000),
    st.integers(0, 1000),
)


class Finalize:
    """A deterministic ``finalize`` that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, usage: Any) -> dict[str, Any]:
        self.calls += 1
        return {"provider": "p", "usage_seen": usage}


@dataclass
class Stream:
    frames: list[bytes] = field(default_factory=list)
    contents: list[str] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    done: bool = True
    error: bool = False
    #: Responses: the terminal event type, or None for a stream cut short.
    terminal: str | None = None
    items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def body(self) -> bytes:
        return b"".join(self.frames)


def encode(obj: Any, *, spaced: bool) -> str:
    if isinstance(obj, str):
        return obj
    return json.dumps(obj) if spaced else json.dumps(obj, separators=(",", ":"))


def frame(data: str, *, eol: str, event: str | None = None) -> bytes:
    head = f"event: {event}{eol}" if event is not None else ""
    return f"{head}data: {data}{eol}{eol}".encode()


@st.composite
def splits(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=16)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in pairwise(bounds)]


def rewrite(rewriter: ChatStreamRewriter | ResponsesStreamRewriter, pieces: list[bytes]) -> bytes:
    out = b"".join(rewriter.feed(piece) for piece in pieces if piece)
    return out + rewriter.close()


def parsed(data: bytes) -> list[tuple[str | None, Any]]:
    parser = SSEParser()
    events = parser.feed(data)
    parser.finish()
    out: list[tuple[str | None, Any]] = []
    for e in events:
        try:
            value = json.loads(e.data)
        except ValueError:
            value = e.data
        out.append((e.event, value))
    return out


# --- chat ---------------------------------------------------------------------------------


@st.composite
def chat_streams(draw: st.DrawFn) -> tuple[Stream, str]:
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    spaced = draw(st.booleans())
    nulls = draw(st.booleans())  # OpenAI repeats "usage": null on every chunk
    s = Stream(contents=draw(st.lists(fragment, max_size=8)))
    usage_at = draw(st.sampled_from(["separate", "last", "absent"]))
    s.usage = draw(usage_value) if usage_at != "absent" else None
    chunks: list[dict[str, Any]] = [
        {
            **HEAD,
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            ],
        },
        *(
            {**HEAD, "choices": [{"index": 0, "delta": {"content": c}, "finish_reason": None}]}
            for c in s.contents
        ),
        {**HEAD, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    if nulls:
        for c in chunks:
            c["usage"] = None
    if usage_at == "last":
        chunks[-1]["usage"] = s.usage
    elif usage_at == "separate":
        chunks.append({**HEAD, "choices": [], "usage": s.usage})
    s.error = draw(st.sampled_from([False] * 5 + [True]))
    if s.error:
        chunks.insert(
            draw(st.integers(1, len(chunks))),
            {"error": {"message": "boom", "type": "server_error"}},
        )
    comments = draw(st.sets(st.integers(0, len(chunks)), max_size=2))
    for i, c in enumerate(chunks):
        if i in comments:
            s.frames.append(f": keep-alive{eol}{eol}".encode())
        s.frames.append(frame(encode(c, spaced=spaced), eol=eol))
    s.done = draw(st.booleans())
    if s.done:
        s.frames.append(frame("[DONE]", eol=eol))
    return s, eol


def check_chat_tail(events: list[tuple[str | None, Any]], s: Stream, finalize: Finalize) -> None:
    assert events[-1][1] == "[DONE]"
    assert sum(data == "[DONE]" for _, data in events) == 1
    chunks = [data for _, data in events[:-1]]
    assert all(isinstance(c, dict) for c in chunks)
    with_metadata = [c for c in chunks if "routing_metadata" in c]
    if s.error:
        assert with_metadata == []
        assert sum("error" in c for c in chunks) == 1
        return
    if not s.done and s.usage is None:
        # Cut short: an explicit error, no final chunk.
        assert "error" in chunks[-1]
        assert with_metadata == []
        return
    final = chunks[-1]
    assert with_metadata == [final]
    assert final["choices"] == []
    assert final["usage"] == s.usage
    assert final["routing_metadata"] == {"provider": "p", "usage_seen": s.usage}
    assert finalize.calls == 1
    for c in chunks[:-1]:
        assert c.get("usage") is None  # usage is reported once, on the final chunk


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_chat_rewrite_does_not_depend_on_the_split(data: st.DataObject) -> None:
    s, _ = data.draw(chat_streams())
    whole = rewrite(ChatStreamRewriter(Finalize(), "p"), [s.body])
    split = rewrite(ChatStreamRewriter(Finalize(), "p"), data.draw(splits(s.body)))
    assert parsed(split) == parsed(whole)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_chat_rewrite_ends_with_one_final_chunk_then_done(data: st.DataObject) -> None:
    s, _ = data.draw(chat_streams())
    finalize = Finalize()
    events = parsed(rewrite(ChatStreamRewriter(finalize, "p"), data.draw(splits(s.body))))
    check_chat_tail(events, s, finalize)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_chat_rewrite_keeps_every_content_delta_once(data: st.DataObject) -> None:
    s, _ = data.draw(chat_streams())
    events = parsed(rewrite(ChatStreamRewriter(Finalize(), "p"), data.draw(splits(s.body))))
    contents = [
        c["choices"][0]["delta"]["content"]
        for _, c in events
        if isinstance(c, dict) and c.get("choices") and "content" in c["choices"][0]["delta"]
    ]
    assert contents == ["", *s.contents]


# --- responses ----------------------------------------------------------------------------


def response(status: str, output: list[Any], usage: Any) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "model": "m",
        "status": status,
        "output": output,
        "usage": usage,
    }


@st.composite
def responses_streams(draw: st.DrawFn) -> tuple[Stream, bool]:
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    spaced = draw(st.booleans())
    named = draw(st.booleans())  # event: lines, or data: only
    s = Stream()
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": response("in_progress", [], None)},
        {"type": "response.in_progress", "response": response("in_progress", [], None)},
    ]
    for n in range(draw(st.integers(0, 3))):
        texts = draw(st.lists(fragment, min_size=1, max_size=4))
        item = {
            "id": f"msg_{n}",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "".join(texts), "annotations": []}],
        }
        events.append(
            {
                "type": "response.output_item.added",
                "output_index": n,
                "item": {**item, "status": "in_progress", "content": []},
            }
        )
        events += [
            {
                "type": "response.output_text.delta",
                "item_id": item["id"],
                "output_index": n,
                "content_index": 0,
                "delta": t,
                "logprobs": [],
            }
            for t in texts
        ]
        s.contents += texts
        events.append({"type": "response.output_item.done", "output_index": n, "item": item})
        s.items.append(item)
    s.usage = {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
    ending = draw(st.sampled_from(["completed", "incomplete", "cut", "cut", "error", "failed"]))
    if ending in ("completed", "incomplete"):
        s.terminal = f"response.{ending}"
        events.append({"type": s.terminal, "response": response(ending, s.items, s.usage)})
    else:
        cut = draw(st.integers(1, len(events)))
        events = events[:cut]
        s.items = [e["item"] for e in events if e["type"] == "response.output_item.done"]
        s.contents = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    for n, event in enumerate(events):
        event["sequence_number"] = n
    lone_error = ending in ("error", "failed")
    if lone_error:  # an error event, numbered or not, maybe with the provider's response.failed
        error: dict[str, Any] = {
            "type": "error",
            "code": "server_error",
            "message": "boom",
            "param": None,
        }
        if ending == "failed" or draw(st.booleans()):
            error["sequence_number"] = len(events)
        events.append(error)
        if ending == "failed":
            failed = response("failed", s.items, None)
            failed["error"] = {"code": "server_error", "message": "boom"}
            events.append(
                {"type": "response.failed", "sequence_number": len(events), "response": failed}
            )
    comments = draw(st.sets(st.integers(0, len(events)), max_size=2))
    for n, event in enumerate(events):
        if n in comments:
            s.frames.append(f": keep-alive{eol}{eol}".encode())
        s.frames.append(
            frame(encode(event, spaced=spaced), eol=eol, event=event["type"] if named else None)
        )
    if len(events) in comments:
        s.frames.append(f": keep-alive{eol}{eol}".encode())
    return s, lone_error


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_responses_rewrite_does_not_depend_on_the_split(data: st.DataObject) -> None:
    s, _ = data.draw(responses_streams())
    whole = rewrite(ResponsesStreamRewriter(Finalize(), "p"), [s.body])
    split = rewrite(ResponsesStreamRewriter(Finalize(), "p"), data.draw(splits(s.body)))
    assert parsed(split) == parsed(whole)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_responses_rewrite_ends_with_one_terminal_event(data: st.DataObject) -> None:
    s, lone_error = data.draw(responses_streams())
    finalize = Finalize()
    out = parsed(rewrite(ResponsesStreamRewriter(finalize, "p"), data.draw(splits(s.body))))
    events = [e for _, e in out]
    assert all(isinstance(e, dict) for e in events)
    for name, e in out:
        assert name is None or name == e["type"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["delta"] for e in events if e["type"] == "response.output_text.delta"] == s.contents
    terminals = [
        e
        for e in events
        if e["type"] in ("response.completed", "response.incomplete", "response.failed")
    ]
    assert terminals == [events[-1]]
    final = events[-1]["response"]
    if s.terminal is not None:
        assert events[-1]["type"] == s.terminal
        assert final["routing_metadata"] == {"provider": "p", "usage_seen": s.usage}
        assert finalize.calls == 1
        return
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert sum(e["type"] == "error" for e in events) == 1
    assert "routing_metadata" not in final
    assert final["status"] == "failed"
    assert final["output"] == s.items
    if any(e["type"] == "response.created" for e in events):
        assert final["id"] == "resp_1"
    if lone_error:
        assert events[-2]["message"] == "boom"
        assert events[-2]["code"] == "upstream_error"
        assert (final["error"]["code"], final["error"]["message"]) == ("upstream_error", "boom")
    else:
        assert events[-2]["code"] == "upstream_error"


# --- minimal examples of the bugs these properties found ---------------------------------

CHUNK = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]}\n\n'
)
CREATED = (
    b'data: {"type":"response.created","sequence_number":0,'
    b'"response":{"id":"resp_1","object":"response","status":"in_progress","output":[]}}\n\n'
)


def test_chat_final_chunk_keeps_the_head_after_a_leading_keep_alive() -> None:
    rewriter = ChatStreamRewriter(Finalize(), "p")
    out = rewrite(rewriter, [b": keep-alive\n\n", CHUNK, b"data: [DONE]\n\n"])
    final = parsed(out)[-2][1]
    assert final["routing_metadata"] == {"provider": "p", "usage_seen": None}
    assert (final["id"], final["created"], final["model"]) == ("c1", 1, "m")


def test_responses_cut_after_a_keep_alive_is_numbered_after_the_last_event() -> None:
    out = rewrite(ResponsesStreamRewriter(Finalize(), "p"), [CREATED, b": keep-alive\n\n"])
    assert [e["sequence_number"] for _, e in parsed(out)] == [0, 1, 2]


def test_unnumbered_error_in_the_same_chunk_as_the_last_event_gets_the_next_number() -> None:
    lone = b'data: {"type":"error","code":"server_error","message":"boom"}\n\n'
    out = rewrite(ResponsesStreamRewriter(Finalize(), "p"), [CREATED + lone])
    assert [(e["type"], e["sequence_number"]) for _, e in parsed(out)] == [
        ("response.created", 0),
        ("error", 1),
        ("response.failed", 2),
    ]


@pytest.mark.parametrize("sep", ["\n", "\r\n"])
def test_last_event_without_its_blank_line_is_accepted_in_both_framings(sep: str) -> None:
    head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    content = json.dumps({**head, "choices": [{"index": 0, "delta": {"content": "hi"}}]})
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    final = json.dumps({**head, "choices": [], "usage": usage})
    rewriter = ChatStreamRewriter(lambda _usage: {"provider": "p"}, "p")
    out = rewriter.feed(f"data: {content}{sep}{sep}data: {final}".encode()) + rewriter.close()
    text = out.decode().replace("\r\n", "\n")
    assert '"routing_metadata":{"provider":"p"}' in text
    assert text.endswith("data: [DONE]\n\n")
    assert '"error"' not in text
