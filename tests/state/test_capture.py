"""``ResponseCapture`` on a stream: chunks with no event to patch go out unread, exactly as the
full read would have sent them."""

from __future__ import annotations

import re
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import to_json

from akgate.sse import SSEParser
from akgate.store import _capture
from akgate.store._capture import ResponseCapture, Turn

START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/event-stream")],
}


def turn() -> Turn:
    return Turn(
        id="resp_turn",
        workspace="",
        store=True,
        background=False,
        stream=True,
        previous_response_id=None,
    )


def lifecycle(kind: str, seq: int) -> dict[str, Any]:
    status = "completed" if kind == "response.completed" else "in_progress"
    return {
        "type": kind,
        "sequence_number": seq,
        "response": {"id": "resp_inner", "object": "response", "status": status, "output": []},
    }


def frame(event: dict[str, Any], named: bool) -> bytes:
    head = b"event: " + event["type"].encode() + b"\n" if named else b""
    return head + b"data: " + to_json(event) + b"\n\n"


async def run(chunks: list[bytes]) -> tuple[list[Any], list[dict[str, Any]], Any]:
    sent: list[Any] = []
    saved: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def save(response: dict[str, Any], encoded: bytes) -> bytes:
        saved.append(response)
        return encoded

    capture = ResponseCapture(turn(), send, save)
    await capture(START)
    for i, chunk in enumerate(chunks):
        more = i < len(chunks) - 1
        await capture({"type": "http.response.body", "body": chunk, "more_body": more})
    return sent, saved, capture.final


texts = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["response.completed", "response.created", "\u00e9t\u00e9", "a\\u0062"]),
)


@st.composite
def streams(draw: Any) -> list[bytes]:
    named = draw(st.booleans())
    events = [lifecycle("response.created", 0), lifecycle("response.in_progress", 1)]
    for text in draw(st.lists(texts, max_size=8)):
        events.append({"type": "response.output_text.delta", "delta": text, "logprobs": []})
    events.append(lifecycle("response.completed", len(events)))
    frames = [frame(e, named) for e in events]
    raw = b"".join(frames)
    if draw(st.booleans()):  # cut between events, as the adapter sends them
        ends = [sum(map(len, frames[: i + 1])) for i in range(len(frames) - 1)]
        cuts = sorted(set(draw(st.lists(st.sampled_from(ends), max_size=12))))
    else:
        cuts = sorted(set(draw(st.lists(st.integers(1, max(len(raw) - 1, 1)), max_size=12))))
    return [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True) if raw[a:b]]


@settings(max_examples=150)
@given(chunks=streams())
def test_unread_chunks_go_out_as_the_full_read_sends_them(chunks: list[bytes]) -> None:
    fast = anyio.run(run, chunks)
    original = _capture._LIFECYCLE_NAME
    _capture._LIFECYCLE_NAME = re.compile(b"")  # matches every chunk: the full read
    try:
        slow = anyio.run(run, chunks)
    finally:
        _capture._LIFECYCLE_NAME = original
    assert fast == slow
    assert fast[2] is not None
    assert fast[2]["id"] == "resp_turn"


class NoParse(SSEParser):
    def feed(self, chunk: bytes) -> list[Any]:
        raise AssertionError(f"parsed {chunk!r}")


async def test_a_delta_chunk_is_not_parsed() -> None:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def save(response: dict[str, Any], encoded: bytes) -> bytes:
        return encoded

    capture = ResponseCapture(turn(), send, save)
    await capture(START)
    await capture(
        {
            "type": "http.response.body",
            "body": frame(lifecycle("response.created", 0), True),
            "more_body": True,
        }
    )
    capture.parser = NoParse()
    delta = {"type": "response.output_text.delta", "delta": "hi", "sequence_number": 1}
    chunk = frame(delta, True) + frame({**delta, "sequence_number": 2}, False)
    await capture({"type": "http.response.body", "body": chunk, "more_body": True})
    assert sent[-1]["body"] == chunk
    for unsafe in (
        frame({**delta, "delta": "response.completed"}, True),  # could be a lifecycle event
        frame({**delta, "delta": "\\u0041"}, True),  # an escape could spell one
        frame(delta, True)[:-1],  # ends inside an event
    ):
        with pytest.raises(AssertionError, match="parsed"):
            await capture({"type": "http.response.body", "body": unsafe, "more_body": True})


class Fed(SSEParser):
    """Records what the capture gives the parser."""

    def __init__(self) -> None:
        super().__init__()
        self.fed: list[bytes] = []

    def feed(self, chunk: bytes) -> list[Any]:
        self.fed.append(chunk)
        return super().feed(chunk)


@pytest.mark.parametrize("named", [True, False])
async def test_the_terminal_chunk_reads_only_its_lifecycle_event(named: bool) -> None:
    """The last chunk (the done events and ``response.completed``): the other events go out
    as they came, unread, and the whole chunk is what the full read sends."""
    done = {"type": "response.output_text.done", "text": "hi", "sequence_number": 2}
    item = {"type": "response.output_item.done", "item": {"id": "msg_1"}, "sequence_number": 3}
    completed = frame(lifecycle("response.completed", 4), named)
    chunk = frame(done, named) + frame(item, named) + completed
    sent, saved, final = await run([frame(lifecycle("response.created", 0), named), chunk])
    assert final is not None
    assert final["id"] == "resp_turn"
    assert saved == [final]
    assert sent[-1]["body"].startswith(frame(done, named) + frame(item, named))
    assert b'"id":"resp_turn"' in sent[-1]["body"]

    spy = Fed()
    capture = ResponseCapture(turn(), _ignore, _keep)
    await capture(START)
    capture.parser = spy
    await capture({"type": "http.response.body", "body": chunk, "more_body": False})
    assert spy.fed == [completed]


async def _ignore(message: Any) -> None:
    return None


async def _keep(response: dict[str, Any], encoded: bytes) -> bytes:
    return encoded


def _chat_app(content: str) -> Any:
    from akgate._asgi import read_body, send_json

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await read_body(scope, receive)
        await send_json(
            send,
            200,
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
            },
        )

    return app


async def _turn(app: Any, **fields: Any) -> Any:
    from tests.adapter.scripted import call

    return await call(app, {"model": "m", "input": "hi", **fields})


async def test_a_json_turn_is_stored_without_reading_the_answer_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under ``ResponsesAdapter(store=...)`` the adapter patches its Response object with the
    turn's id and flags and hands it over: the capture neither parses nor encodes it again."""
    from akgate.adapter import ResponsesAdapter
    from akgate.store import MemoryResponseStore

    store = MemoryResponseStore()
    app = ResponsesAdapter(_chat_app("one"), store=store)

    def no_json(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the capture read the answer back")

    monkeypatch.setattr(_capture, "from_json", no_json)
    monkeypatch.setattr(_capture, "to_json", no_json)
    first = await _turn(app)
    assert first.status == 200
    body = first.json
    assert body["store"] is True
    assert body["previous_response_id"] is None
    assert int(first.headers[b"content-length"]) == len(first.body)
    stored = await store.load("", body["id"])
    assert stored is not None
    assert stored.response == body
    second = (await _turn(app, previous_response_id=body["id"])).json
    assert second["previous_response_id"] == body["id"]
    assert second["id"] != body["id"]
    assert second["id"].startswith("resp_")


async def test_a_rewritten_answer_is_read_back_and_patched() -> None:
    """A layer between the adapter and the store that changes the body: the capture reads the
    body it received, not the adapter's object."""
    from akgate.adapter import ResponsesAdapter
    from akgate.store import MemoryResponseStore, StatefulResponses

    adapter = ResponsesAdapter(_chat_app("two"))

    async def rewriting(scope: Any, receive: Any, send: Any) -> None:
        async def rewrite(message: Any) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                message = {**message, "body": message["body"][:-1] + b',"extra":1}'}
            elif message["type"] == "http.response.start":
                message = {**message, "headers": [(b"content-type", b"application/json")]}
            await send(message)

        await adapter(scope, receive, rewrite)

    store = MemoryResponseStore()
    app = StatefulResponses(rewriting, store=store)
    result = await _turn(app)
    body = result.json
    assert body["extra"] == 1
    assert body["store"] is True
    stored = await store.load("", body["id"])
    assert stored is not None
    assert stored.response == body


async def test_the_full_stack_stores_a_json_turn_without_parsing_it_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """gateway(): routing adds routing_metadata to the adapter's own object and leaves both in
    the answer slot; neither routing nor the store's capture parses the Response again."""
    from akgate.routing import _metadata
    from akgate.store import MemoryResponseStore
    from tests.state.conftest import ChatEcho, keys, sdk, stack

    parsed: list[bytes] = []
    from_json = _metadata.from_json

    def spy(data: Any, *args: Any, **kwargs: Any) -> Any:
        if b'"object":"response"' in (data if isinstance(data, bytes) else data.encode()):
            parsed.append(data)
        return from_json(data, *args, **kwargs)

    def no_json(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the capture read the answer back")

    monkeypatch.setattr(_metadata, "from_json", spy)
    monkeypatch.setattr(_capture, "from_json", no_json)
    monkeypatch.setattr(_capture, "to_json", no_json)
    store = MemoryResponseStore()
    key, _ = keys()
    client = sdk(stack(ChatEcho(), store, key), key)
    first = await client.responses.create(model="echo", input="one")
    second = await client.responses.create(model="echo", input="two", previous_response_id=first.id)
    assert second.output_text == "echo: two"
    assert second.previous_response_id == first.id
    assert parsed == []
    stored = await store.load("ws_a", second.id)
    assert stored is not None
    assert stored.response["id"] == second.id
    assert stored.response["routing_metadata"]["provider"]
    assert stored.response["output_text"] == "echo: two"
    await client.close()


def test_inject_json_into_a_known_object_gives_the_same_bytes() -> None:
    from pydantic_core import from_json

    from akgate.routing._metadata import inject_json

    for body in (b'{"object":"response","usage":{"total_tokens":3}}', b'{"a":1} \n', b"{}"):
        metadata = {"provider": "p"}
        parsed = from_json(body)
        plain = inject_json(body, lambda usage: metadata)
        known = inject_json(body, lambda usage: metadata, parsed)
        assert known == plain
        assert known is not None
        assert from_json(known) == parsed


async def test_the_turns_slot_leaves_the_context_with_the_request() -> None:
    from akgate.adapter import ResponsesAdapter
    from akgate.adapter._answer import ANSWER_SLOT
    from akgate.context import SCOPE_KEY, RequestContext
    from akgate.store import MemoryResponseStore, StatefulResponses
    from tests.support.asgi import drive, http_scope

    ctx = RequestContext()
    app = StatefulResponses(ResponsesAdapter(_chat_app("three")), store=MemoryResponseStore())
    body = b'{"model": "m", "input": "hi"}'
    sent = await drive(app, {**http_scope("/v1/responses"), SCOPE_KEY: ctx}, body)
    assert sent[0]["status"] == 200
    assert b'"store":true' in sent[-1]["body"]
    assert ANSWER_SLOT not in ctx.state
