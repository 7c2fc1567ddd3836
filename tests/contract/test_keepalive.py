"""SSE keep-alive: ``: keep-alive`` comments on idle streams, between events only.

A paced inner app goes silent for longer than the client's read timeout; with heartbeats the
client reads through, without them it times out.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import auriko
import httpx
import openai
import pytest
from httpx_sse import connect_sse
from hypothesis import given, settings
from hypothesis import strategies as st

from akgate import SSEKeepAlive, gateway
from akgate.auth import generate_key
from tests.support.servers import run_uvicorn

PAUSE = 1.5  # the inner app's silence
READ_TIMEOUT = 0.9  # the client's idle limit: shorter than the pause
HEARTBEAT = 0.15
COMMENT = b": keep-alive\n\n"


def frame(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


async def paced_chat(scope: Any, receive: Any, send: Any) -> None:
    """A chat app that streams one chunk, goes silent for PAUSE seconds, then finishes."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream")],
        }
    )
    first = {
        **base,
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": "a"}, "finish_reason": None}
        ],
    }
    await send({"type": "http.response.body", "body": frame(first), "more_body": True})
    await anyio.sleep(PAUSE)
    end = [
        {**base, "choices": [{"index": 0, "delta": {"content": "b"}, "finish_reason": "stop"}]},
        {
            **base,
            "choices": [],
            "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
        },
    ]
    body = b"".join(frame(c) for c in end) + b"data: [DONE]\n\n"
    await send({"type": "http.response.body", "body": body, "more_body": False})


def served(heartbeat: float | None) -> tuple[Any, str]:
    key = generate_key("live")[0]
    app = gateway(paced_chat, keys=[key], models=["m"], demo=False, sse_heartbeat=heartbeat)
    return app, key


CHAT = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True}
RESPONSES = {"model": "m", "input": "x", "stream": True}


def raw_stream(base: str, key: str, path: str, body: dict[str, Any]) -> bytes:
    timeout = httpx.Timeout(10, read=READ_TIMEOUT)
    with (
        httpx.Client(base_url=base, timeout=timeout) as client,
        client.stream(
            "POST", path, json=body, headers={"authorization": f"Bearer {key}"}
        ) as response,
    ):
        assert response.status_code == 200
        return b"".join(response.iter_raw())


def test_idle_chat_stream_gets_heartbeats_between_events_and_the_client_reads_through() -> None:
    app, key = served(HEARTBEAT)
    with run_uvicorn(app) as base:
        raw = raw_stream(base, key, "/v1/chat/completions", CHAT)
        sdk = openai.OpenAI(
            base_url=base + "/v1",
            api_key=key,
            timeout=httpx.Timeout(10, read=READ_TIMEOUT),
            max_retries=0,
        )
        text = "".join(
            chunk.choices[0].delta.content or ""
            for chunk in sdk.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "x"}], stream=True
            )
            if chunk.choices
        )
    assert text == "ab"
    assert raw.count(COMMENT) >= 2
    # Every heartbeat sits between two events: what precedes it ends an event.
    blocks = [b for b in raw.split(b"\n\n") if b]
    assert not blocks[0].startswith(b":")
    events = [b for b in blocks if b != b": keep-alive"]
    assert all(b.startswith(b"data: ") for b in events)  # no comment was spliced into one
    assert raw.endswith(b"data: [DONE]\n\n")


def test_idle_responses_stream_gets_heartbeats_that_are_not_events() -> None:
    app, key = served(HEARTBEAT)
    with run_uvicorn(app) as base:
        raw = raw_stream(base, key, "/v1/responses", RESPONSES)
        timeout = httpx.Timeout(10, read=READ_TIMEOUT)
        with (
            httpx.Client(base_url=base, timeout=timeout) as client,
            connect_sse(
                client,
                "POST",
                "/v1/responses",
                json=RESPONSES,
                headers={"authorization": f"Bearer {key}"},
            ) as source,
        ):
            events = [json.loads(e.data) for e in source.iter_sse()]
        # A float timeout: httpx applies it to every read, so only the heartbeats keep it alive.
        sdk = auriko.Client(api_key=key, base_url=base + "/v1", timeout=READ_TIMEOUT, max_retries=0)
        types = [event.type for event in sdk.responses.create(model="m", input="x", stream=True)]
    assert types[-1] == "response.completed"
    assert raw.count(COMMENT) >= 2
    # Heartbeats are comments: the events and their numbering are exactly as without them.
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output_text"] == "ab"


def test_without_heartbeats_the_idle_client_times_out() -> None:
    app, key = served(None)
    with run_uvicorn(app) as base, pytest.raises(httpx.ReadTimeout):
        raw_stream(base, key, "/v1/chat/completions", CHAT)


# -- the layer alone ----------------------------------------------------------------------------


async def record(app: Any, path: str = "/v1/responses") -> list[tuple[float, bytes]]:
    """Run one request; the (time, body) of every body message the client got."""
    sent: list[tuple[float, bytes]] = []
    t0 = anyio.current_time()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            sent.append((anyio.current_time() - t0, message.get("body", b"")))

    await app({"type": "http", "method": "POST", "path": path, "headers": []}, receive, send)
    return sent


def scripted(*steps: bytes | float, content_type: bytes = b"text/event-stream") -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", content_type)],
            }
        )
        for step in steps:
            if isinstance(step, float):
                await anyio.sleep(step)
            else:
                await send({"type": "http.response.body", "body": step, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


async def test_no_heartbeat_inside_an_event() -> None:
    # Half an event, a long silence, the other half: the comment must wait for the event's end.
    app = SSEKeepAlive(scripted(b'data: {"a":', 0.5, b"1}\n\n", 0.35), interval=0.1)
    bodies = [body for _, body in await record(app)]
    assert bodies[:2] == [b'data: {"a":', b"1}\n\n"]
    assert COMMENT in bodies[2:]
    assert b"".join(bodies).startswith(b'data: {"a":1}\n\n')


async def test_every_inner_message_is_forwarded_at_once() -> None:
    # The inner app sends its second event only once the client has the first: a layer that
    # held the first back would never see the second (and the guard would fail the test).
    delivered = anyio.Event()
    sent: list[bytes] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        with anyio.fail_after(5):
            await delivered.wait()
        await send({"type": "http.response.body", "body": b"data: 2\n\n", "more_body": False})

    async def client_send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            sent.append(message["body"])
            delivered.set()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}"}

    scope = {"type": "http", "method": "POST", "path": "/v1/responses", "headers": []}
    await SSEKeepAlive(inner, interval=5)(scope, receive, client_send)
    assert sent == [b"data: 1\n\n", b"data: 2\n\n"]


async def test_json_answers_and_other_paths_get_no_heartbeat() -> None:
    silent_json = scripted(b"{", 0.3, b"}", content_type=b"application/json")
    assert COMMENT not in [b for _, b in await record(SSEKeepAlive(silent_json, interval=0.05))]
    silent_sse = scripted(b"data: 1\n\n", 0.3)
    other = await record(SSEKeepAlive(silent_sse, interval=0.05), path="/v1/other")
    assert COMMENT not in [b for _, b in other]


async def test_an_inner_exception_is_raised_as_is() -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await record(SSEKeepAlive(broken))


def test_serve_cli_options() -> None:
    from akgate.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert (args.sse_heartbeat, args.no_public_directory) == (15.0, False)
    args = build_parser().parse_args(["serve", "--sse-heartbeat", "2.5", "--no-public-directory"])
    assert (args.sse_heartbeat, args.no_public_directory) == (2.5, True)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--sse-heartbeat", "-1"])


async def test_served_stack_without_public_directory() -> None:
    from akgate._serve import ServeConfig, build_app
    from akgate.auth import MemoryKeyStore

    for public, status in ((True, 200), (False, 404)):
        app = build_app(ServeConfig(public_directory=public), keys=MemoryKeyStore())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            r = await client.get("/v1/registry/models")
        # Off, nothing in the stack answers the path: the demo model's own 404.
        assert r.status_code == status, r.text


async def test_a_heartbeat_and_an_inner_send_never_overlap() -> None:
    # A slow client: each send takes 0.15 s. The inner app sends again while a heartbeat is
    # still on the wire; its send must wait for the heartbeat to finish.
    active = 0
    overlaps = 0
    sent: list[bytes] = []

    async def slow_send(message: dict[str, Any]) -> None:
        nonlocal active, overlaps
        active += 1
        overlaps += active > 1
        if message["type"] == "http.response.body":
            await anyio.sleep(0.15 if message.get("body") == COMMENT else 0)
            sent.append(message.get("body", b""))
        active -= 1

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}"}

    app = SSEKeepAlive(scripted(b"data: 1\n\n", 0.15, b"data: 2\n\n"), interval=0.1)
    scope = {"type": "http", "method": "POST", "path": "/v1/responses", "headers": []}
    await app(scope, receive, slow_send)
    assert overlaps == 0
    assert sent == [b"data: 1\n\n", COMMENT, b"data: 2\n\n", b""]


def test_keepalive_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_keepalive.py"
    spec = importlib.util.spec_from_file_location("bench_keepalive", script)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "sse_heartbeat=15" in out
    assert "stream" in out


@settings(max_examples=25, deadline=None)
@given(st.data())
async def test_heartbeats_only_add_comments_between_events(data: st.DataObject) -> None:
    # Any split of a stream into chunks (mid-event too), with pauses longer than the interval
    # after some of them: removing the heartbeats gives back exactly the inner messages, and
    # every heartbeat follows a complete event.
    payloads = data.draw(
        st.lists(st.text("ab{}:, ", min_size=1, max_size=10), min_size=1, max_size=5)
    )
    stream = b"".join(b"data: " + p.encode() + b"\n\n" for p in payloads)
    cuts = sorted(data.draw(st.sets(st.integers(1, len(stream) - 1), max_size=6)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    pieces: list[bytes | float] = []
    for chunk in chunks:
        pieces.append(chunk)
        pieces.append(data.draw(st.sampled_from([0.0, 0.0, 0.03, 0.05])))
    sent = [body for _, body in await record(SSEKeepAlive(scripted(*pieces), interval=0.015))]
    assert [b for b in sent if b != COMMENT] == [*chunks, b""]
    so_far = b""
    for body in sent:
        if body == COMMENT:
            assert so_far.endswith(b"\n\n")  # never inside an event
        else:
            so_far += body


def test_heartbeats_on_other_event_loops_than_asyncio() -> None:
    # Under asyncio the beats are loop timers; other loops (trio) get them from a task in a task
    # group. The same stream gets the same comments, between events only, either way.
    app = SSEKeepAlive(scripted(b'data: {"a":', 0.3, b"1}\n\n", 0.3, b"data: 2\n\n"), interval=0.1)

    async def run() -> list[bytes]:
        return [body for _, body in await record(app)]

    for backend in ("asyncio", "trio"):
        bodies = anyio.run(run, backend=backend)
        assert [b for b in bodies if b != COMMENT] == [
            b'data: {"a":',
            b"1}\n\n",
            b"data: 2\n\n",
            b"",
        ], backend
        assert bodies[:2] == [b'data: {"a":', b"1}\n\n"], backend  # none inside the event
        assert COMMENT in bodies[2:], backend
