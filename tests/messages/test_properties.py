"""Property tests: random chat chunk streams through the real ``MessagesAdapter``.

The chat streams come from the Responses adapter's strategy (content, refusal and reasoning
deltas, 1-3 sequential tool calls with late ids/names and fragmented arguments, usage anywhere,
every finish_reason, error frames, streams cut short), split at arbitrary byte offsets. Every
resulting Anthropic stream must pass the strict order checks, and carry exactly what the chunks
carried.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from akgate.messages import MessagesAdapter
from akgate.messages._ids import client_tool_id
from tests.adapter.scripted import Result, call, stream_app
from tests.adapter.test_properties import scenarios, splits

from .checks import check_stream

REQ: dict[str, Any] = {
    "model": "m",
    "max_tokens": 100,
    "stream": True,
    "messages": [{"role": "user", "content": "hi"}],
}
STOPS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "content_filter": "refusal",
    "tool_calls": "end_turn",
    None: "end_turn",
}


def run(pieces: list[bytes], request: dict[str, Any] | None = None, **options: Any) -> Result:
    app = MessagesAdapter(stream_app(pieces), **options)
    return anyio.run(partial(call, app, request or REQ, path="/v1/messages"))


def expected(chunks: list[Any]) -> tuple[str, str, list[tuple[str, str, Any]], Any]:
    """(text, thinking, calls, finish) the chunks carry before any error frame."""
    text = thinking = ""
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for c in chunks:
        if isinstance(c, str):
            continue
        if "error" in c:
            break
        if not c["choices"]:
            continue
        choice = c["choices"][0]
        delta = choice["delta"]
        thinking += delta.get("reasoning_content") or delta.get("reasoning") or ""
        text += (delta.get("content") or "") + (delta.get("refusal") or "")
        for tc in delta.get("tool_calls", ()):
            entry = calls.setdefault(tc["index"], {"id": "", "name": "", "args": ""})
            entry["id"] = entry["id"] or tc.get("id", "")
            entry["name"] = entry["name"] or tc["function"].get("name", "")
            entry["args"] += tc["function"].get("arguments", "")
        finish = choice.get("finish_reason") or finish
    listed = [
        (client_tool_id(e["id"]), e["name"], json.loads(e["args"] or "{}")) for e in calls.values()
    ]
    return text, thinking, listed, finish


@settings(max_examples=150, deadline=None)
@given(data=st.data(), omit=st.booleans())
def test_every_stream_is_in_anthropic_order_and_carries_the_chunks(
    data: st.DataObject, omit: bool
) -> None:
    scenario = data.draw(scenarios())
    request = {**REQ, "thinking": {"type": "adaptive", "display": "omitted"}} if omit else REQ
    result = run(data.draw(splits(scenario.sse())), request)
    assert result.status == 200
    assert result.bodies[-1].get("more_body", False) is False
    message = check_stream(result.events)
    if scenario.error or (scenario.finish is None and "[DONE]" not in scenario.chunks):
        assert "error" in message  # never a silent end
        return
    assert "error" not in message
    text, thinking, calls, finish = expected(scenario.chunks)
    blocks = message["content"]
    assert "".join(b["text"] for b in blocks if b["type"] == "text") == text
    streamed_thinking = "".join(b["thinking"] for b in blocks if b["type"] == "thinking")
    assert streamed_thinking == ("" if omit else thinking)
    assert [(b["id"], b["name"], b["input"]) for b in blocks if b["type"] == "tool_use"] == calls
    assert message["stop_reason"] == ("tool_use" if calls else STOPS[finish])


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_json_answer_over_the_same_stream_has_the_same_blocks(data: st.DataObject) -> None:
    scenario = data.draw(scenarios(errors=False))
    if scenario.finish is None and "[DONE]" not in scenario.chunks:
        return
    pieces = data.draw(splits(scenario.sse()))
    streamed = check_stream(run(pieces).events)
    answer = run(pieces, {**REQ, "stream": False})
    assert answer.status == 200
    body = answer.json
    strip = [{k: v for k, v in b.items() if k != "id"} for b in streamed["content"]]
    assert [{k: v for k, v in b.items() if k != "id"} for b in body["content"]] == strip
    assert body["stop_reason"] == streamed["stop_reason"]
