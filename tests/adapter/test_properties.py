"""Property tests: random chat chunk streams through the real ``ResponsesAdapter``.

A strategy builds realistic chat-completion chunk streams (content, refusal and reasoning
deltas, 1-3 sequential tool calls with late ids/names and fragmented arguments, usage in any of
its places, every finish_reason, error frames, streams cut short) and splits the SSE bytes into
arbitrary ``http.response.body`` messages. A small reference model (plain concatenation per kind)
gives what the Responses stream must carry.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from akgate.adapter import ResponsesAdapter

from .checks import check_response, check_stream
from .scripted import Result, call, chunk, json_app, stream_app

REQ: dict[str, Any] = {"model": "m", "input": "hi", "stream": True}
TERMINAL = ("response.completed", "response.incomplete", "response.failed")
FINISH: dict[str | None, tuple[str, dict[str, str] | None]] = {
    "stop": ("completed", None),
    "tool_calls": ("completed", None),
    "length": ("incomplete", {"reason": "max_output_tokens"}),
    "content_filter": ("incomplete", {"reason": "content_filter"}),
    None: ("completed", None),  # [DONE] without a finish_reason (§6.2)
}
NAMES = ("get_weather", "search", "f", "lookup_user")
ERROR = {"error": {"message": "upstream broke", "type": "server_error", "code": "server_error"}}

# --- strategies ---------------------------------------------------------------------------

fragment = st.one_of(
    st.text(min_size=1, max_size=8),
    st.sampled_from(["\n\n", "data: [DONE]", '"usage"', "\r\n", "é", "🙂", " ", "\\", '"']),
)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
usage_value = st.builds(
    lambda p, c, cached, reasoning: {
        "prompt_tokens": p,
        "completion_tokens": c,
        "total_tokens": p + c,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    },
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(0, 100),
    st.integers(0, 100),
)


def split_text(draw: st.DrawFn, text: str, *, min_parts: int = 1) -> list[str]:
    """``text`` cut at random points into non-empty fragments."""
    if len(text) <= 1:
        return [text]
    cuts = sorted(draw(st.sets(st.integers(1, len(text) - 1), max_size=6)))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in pairwise(bounds)]


@dataclass
class Scenario:
    """One generated stream and what the reference model expects of it."""

    chunks: list[dict[str, Any] | str] = field(default_factory=list)
    content: str = ""
    refusal: str = ""
    reasoning: str = ""
    #: Upstream calls in order: (id, name, full arguments), as far as they got.
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    finish: str | None = None
    usage: dict[str, Any] | None = None
    status: str = "completed"
    incomplete: dict[str, str] | None = None
    error: bool = False
    canonical: bool = True  # reasoning, then message, then calls (the non-stream order)
    #: Chunk positions preceded by a keep-alive comment.
    comments: frozenset[int] = frozenset()

    def sse(self) -> bytes:
        return b"".join(
            (b": keep-alive\n\n" if n in self.comments else b"")
            + f"data: {c if isinstance(c, str) else json.dumps(c)}\n\n".encode()
            for n, c in enumerate(self.chunks)
        )

    def completion(self) -> dict[str, Any]:
        """The equivalent non-streamed chat completion."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content or None}
        if self.refusal:
            message["refusal"] = self.refusal
        if self.reasoning:
            message["reasoning_content"] = self.reasoning
        if self.calls:
            message["tool_calls"] = [
                {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
                for i, n, a in self.calls
            ]
        body: dict[str, Any] = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish}],
        }
        if self.usage is not None:
            body["usage"] = self.usage
        return body


@st.composite
def tool_call_entries(draw: st.DrawFn, index: int, call_id: str) -> list[dict[str, Any]]:
    """The ``delta.tool_calls`` entries of one call, in order."""
    name = draw(st.sampled_from(NAMES))
    args = json.dumps(
        draw(st.dictionaries(st.text(min_size=1, max_size=6), json_value, max_size=4))
    )
    frags = split_text(draw, args)
    if draw(st.booleans()):
        frags = ["", *frags]  # OpenAI: the first delta carries id, name and arguments ""
    id_at = draw(st.sampled_from([0, 0, len(frags) - 1, draw(st.integers(0, len(frags) - 1))]))
    name_at = draw(st.sampled_from([0, id_at, len(frags) - 1]))
    repeat = draw(st.booleans())  # some upstreams repeat id/name on every fragment
    entries = []
    for j, frag in enumerate(frags):
        entry: dict[str, Any] = {"index": index, "function": {"arguments": frag}}
        if j == id_at or (repeat and j > id_at):
            entry["id"], entry["type"] = call_id, "function"
        if j == name_at or (repeat and j > name_at):
            entry["function"]["name"] = name
        entries.append(entry)
    return entries


@st.composite
def scenarios(draw: st.DrawFn, *, errors: bool = True) -> Scenario:
    reasoning_key = draw(st.sampled_from(["reasoning_content", "reasoning"]))
    blocks = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["content", "refusal", reasoning_key]),
                st.lists(fragment, min_size=1, max_size=4),
            ),
            max_size=4,
        )
    )
    base = draw(st.sampled_from([0, 1]))
    n_calls = draw(st.sampled_from([0, 0, 1, 2, 3]))
    entries: list[tuple[str, Any]] = [(k, f) for k, frags in blocks for f in frags]
    for i in range(n_calls):
        call_id = f"call_{i}_{draw(st.integers(0, 999))}"
        entries += [("tool_calls", e) for e in draw(tool_call_entries(base + i, call_id))]

    # Group entries into chunk deltas (a key appears once per delta; calls append).
    deltas: list[dict[str, Any]] = []
    for key, value in entries:
        if not deltas or (key in deltas[-1] and key != "tool_calls") or draw(st.booleans()):
            deltas.append({})
        if key == "tool_calls":
            deltas[-1].setdefault("tool_calls", []).append(value)
        else:
            deltas[-1][key] = value
    chunks: list[dict[str, Any] | str] = []
    if draw(st.booleans()) or not deltas:
        chunks.append(chunk({"role": "assistant", "content": ""}))
    chunks += [chunk(d) for d in deltas]

    finish = draw(st.sampled_from(["stop", "length", "tool_calls", "content_filter", None]))
    if finish is not None:
        if draw(st.booleans()) and len(chunks) > 1:
            last = chunks[-1]
            assert isinstance(last, dict)
            last["choices"][0]["finish_reason"] = finish
        else:
            chunks.append(chunk({}, finish))
    usage_at = draw(st.sampled_from(["separate", "last", "absent"]))
    usage = draw(usage_value) if usage_at != "absent" else None
    if usage_at == "separate":
        chunks.append(chunk(choices=False, usage=usage))
    elif usage_at == "last":
        last = chunks[-1]
        assert isinstance(last, dict)
        last["usage"] = usage
    done = draw(st.sampled_from([True, True, False]))  # False: EOF without [DONE]
    error_at = None
    if errors and len(chunks) > 1 and draw(st.sampled_from([False, False, False, True])):
        error_at = draw(st.integers(1, len(chunks)))  # never first: that is an HTTP error
        chunks.insert(error_at, ERROR)
        done = draw(st.booleans())  # vLLM sends [DONE] after its error frame
    if done:
        chunks.append("[DONE]")

    scenario = reference(chunks[:error_at] if error_at is not None else chunks)
    scenario.chunks = chunks
    scenario.comments = frozenset(draw(st.sets(st.integers(0, len(chunks)), max_size=2)))
    scenario.usage = usage
    if error_at is not None:
        scenario.status, scenario.incomplete, scenario.error = "failed", None, True
    elif finish is None and not done:
        scenario.status, scenario.incomplete = "failed", None  # cut short: server_error
    else:
        scenario.status, scenario.incomplete = FINISH[finish]
    return scenario


def reference(chunks: list[dict[str, Any] | str]) -> Scenario:
    """Concatenate what the chunks carry, per kind; calls count once id and name are known."""
    s = Scenario()
    calls: dict[int, dict[str, str]] = {}
    order: list[str] = []
    for c in chunks:
        if isinstance(c, str) or not c["choices"]:
            continue
        choice = c["choices"][0]
        delta = choice["delta"]
        if delta.get("reasoning_content") or delta.get("reasoning"):
            s.reasoning += delta.get("reasoning_content") or delta.get("reasoning")
            order.append("reasoning")
        if delta.get("content"):
            s.content += delta["content"]
            order.append("message")
        if delta.get("refusal"):
            s.refusal += delta["refusal"]
            order.append("message")
        for tc in delta.get("tool_calls", ()):
            entry = calls.setdefault(tc["index"], {"id": "", "name": "", "args": ""})
            entry["id"] = entry["id"] or tc.get("id", "")
            entry["name"] = entry["name"] or tc["function"].get("name", "")
            entry["args"] += tc["function"].get("arguments", "")
            order.append("call")
        s.finish = choice.get("finish_reason") or s.finish
    s.calls = [(e["id"], e["name"], e["args"]) for e in calls.values() if e["id"] and e["name"]]
    kinds = [k for i, k in enumerate(order) if i == 0 or order[i - 1] != k]
    s.canonical = kinds == sorted(set(kinds), key=["reasoning", "message", "call"].index)
    return s


@st.composite
def splits(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut at arbitrary byte offsets (inside UTF-8 sequences too), maybe with empties.

    Half the time every event boundary is a cut too (one event per message: the hot path).
    """
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=12))
    if draw(st.booleans()):
        cuts += [m.end() for m in re.finditer(b"\n\n", data)]
    cuts.sort()
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in pairwise(bounds)]


# --- harness ------------------------------------------------------------------------------


def run(pieces: list[bytes], request: dict[str, Any] | None = None, **options: Any) -> Result:
    app = ResponsesAdapter(stream_app(pieces), **options)
    return anyio.run(call, app, request or REQ)


def run_json(completion: dict[str, Any], **options: Any) -> Result:
    app = ResponsesAdapter(json_app(completion), **options)
    return anyio.run(call, app, {**REQ, "stream": False})


def message_texts(output: list[dict[str, Any]], kind: str) -> str:
    key = "text" if kind == "output_text" else "refusal"
    return "".join(
        part[key]
        for item in output
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == kind
    )


def reasoning_text(output: list[dict[str, Any]]) -> str:
    return "".join(
        part["text"]
        for item in output
        if item["type"] == "reasoning"
        for part in (*item["summary"], *item.get("content", ()))
    )


def calls_of(output: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [
        (i["call_id"], i["name"], i["arguments"]) for i in output if i["type"] == "function_call"
    ]


def normalise(events: list[dict[str, Any]]) -> list[Any]:
    """Events with generated ids renumbered in order of appearance and timestamps dropped."""
    ids: dict[str, str] = {}

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if k in ("created_at", "completed_at"):
                    continue
                if k in ("id", "item_id") and isinstance(v, str):
                    v = ids.setdefault(v, f"id{len(ids)}")
                out[k] = walk(v)
            return out
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return [walk(e) for e in events]


reasoning_modes = st.sampled_from(["summary", "reasoning_text"])


# --- properties ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(data=st.data(), mode=reasoning_modes)
def test_every_stream_passes_the_strict_checks(data: st.DataObject, mode: str) -> None:
    scenario = data.draw(scenarios())
    result = run(data.draw(splits(scenario.sse())), reasoning_events=mode)
    assert result.status == 200
    assert result.bodies[-1].get("more_body", False) is False
    check_stream(result.events)


@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_terminal_output_is_the_items_sent_in_output_item_done(data: st.DataObject) -> None:
    scenario = data.draw(scenarios())
    events = run(data.draw(splits(scenario.sse()))).events
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    terminal = events[-1]["response"]
    if events[-1]["type"] == "response.failed":
        # Items still open at the failure end incomplete, with nothing more sent for them.
        assert terminal["output"][: len(done)] == done
        assert all(i["status"] == "incomplete" for i in terminal["output"][len(done) :])
        assert len(terminal["output"]) - len(done) <= 1
    else:
        assert terminal["output"] == done


@settings(max_examples=150, deadline=None)
@given(data=st.data(), mode=reasoning_modes)
def test_deltas_rebuild_texts_arguments_and_call_ids(data: st.DataObject, mode: str) -> None:
    scenario = data.draw(scenarios())
    events = run(data.draw(splits(scenario.sse())), reasoning_events=mode).events
    output = events[-1]["response"]["output"]
    by_id = {item["id"]: item for item in output}

    def joined(kind: str) -> str:
        return "".join(e["delta"] for e in events if e["type"] == kind)

    assert (
        joined("response.output_text.delta")
        == scenario.content
        == message_texts(output, "output_text")
    )
    assert joined("response.refusal.delta") == scenario.refusal == message_texts(output, "refusal")
    reasoning_kind = (
        "response.reasoning_text.delta"
        if mode == "reasoning_text"
        else "response.reasoning_summary_text.delta"
    )
    assert joined(reasoning_kind) == scenario.reasoning == reasoning_text(output)
    assert calls_of(output) == scenario.calls
    for item in output:
        if item["type"] == "function_call":
            args = "".join(
                e["delta"]
                for e in events
                if e["type"] == "response.function_call_arguments.delta"
                and e["item_id"] == item["id"]
            )
            assert args == item["arguments"]
            assert item["id"] != item["call_id"]
    for event in events:
        if "item_id" in event:
            assert event["item_id"] in by_id


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_terminal_status_follows_the_finish_reason_table(data: st.DataObject) -> None:
    scenario = data.draw(scenarios())
    events = run(data.draw(splits(scenario.sse()))).events
    types = [e["type"] for e in events]
    terminal = events[-1]["response"]
    assert terminal["status"] == scenario.status
    assert events[-1]["type"] == f"response.{scenario.status}"
    assert terminal["incomplete_details"] == scenario.incomplete
    if scenario.status == "failed":
        assert types[-2:] == ["error", "response.failed"]
        assert types.count("error") == 1
        # One registry code per fault: the error event and response.failed agree.
        assert terminal["error"]["code"] == events[-2]["code"] == "upstream_error"
        assert terminal["error"]["type"] == events[-2]["error"]["type"] == "api_error"
        if scenario.error:
            assert events[-2]["message"] == "upstream broke"
    else:
        assert "error" not in types
        assert terminal["error"] is None
        if scenario.status == "incomplete" and terminal["output"]:
            assert terminal["output"][-1]["status"] == "incomplete"
            assert all(i["status"] == "completed" for i in terminal["output"][:-1])
        elif scenario.status == "completed":
            assert all(i["status"] == "completed" for i in terminal["output"])
        usage = terminal["usage"]
        expected = scenario.usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (
            expected["prompt_tokens"],
            expected["completion_tokens"],
            expected["total_tokens"],
        )


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_splitting_the_inner_bytes_differently_gives_the_same_events(
    data: st.DataObject,
) -> None:
    scenario = data.draw(scenarios())
    body = scenario.sse()
    one = run(data.draw(splits(body))).events
    other = run(data.draw(splits(body))).events
    assert normalise(one) == normalise(other)


@settings(max_examples=120, deadline=None)
@given(data=st.data(), mode=reasoning_modes)
def test_stream_and_non_stream_agree(data: st.DataObject, mode: str) -> None:
    scenario = data.draw(scenarios(errors=False))
    if scenario.status == "failed":
        return  # a stream cut short has no non-stream equivalent
    streamed = run(data.draw(splits(scenario.sse())), reasoning_events=mode).events
    final = streamed[-1]["response"]
    aggregated = run(
        data.draw(splits(scenario.sse())), {**REQ, "stream": False}, reasoning_events=mode
    ).json
    whole = run_json(scenario.completion(), reasoning_events=mode).json
    for response in (aggregated, whole):
        check_response(response)
        assert response["status"] == final["status"]
        assert response["incomplete_details"] == final["incomplete_details"]
        assert response["usage"] == final["usage"]
        assert response["output_text"] == final["output_text"]
        for kind in ("output_text", "refusal"):
            assert message_texts(response["output"], kind) == message_texts(final["output"], kind)
        assert reasoning_text(response["output"]) == reasoning_text(final["output"])
        assert calls_of(response["output"]) == calls_of(final["output"])
        if response["output"]:
            assert response["output"][-1]["status"] == final["output"][-1]["status"]
    assert normalise([aggregated]) == normalise([final])
    if scenario.canonical:
        assert [i["type"] for i in whole["output"]] == [i["type"] for i in final["output"]]
