"""``RequestBodyTimeout`` under asyncio (a loop timer) and other loops (an anyio cancel scope).

Both give the same answers: 408 while the body is unread, nothing once it is complete, and a
cancellation that is not the layer's own goes on as it came.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

from akgate import RequestBodyTimeout
from akgate._types import Message, Receive, Scope, Send

SCOPE: Scope = {
    "type": "http",
    "method": "POST",
    "path": "/v1/chat/completions",
    "raw_path": b"/v1/chat/completions",
    "headers": [(b"content-length", b"1000")],
    "query_string": b"",
    "root_path": "",
}


def receiving(chunks: list[bytes], *, hang: bool) -> Receive:
    pending = list(chunks)

    async def receive() -> Message:
        if pending:
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending) or hang}
        await anyio.sleep_forever()
        raise AssertionError

    return receive


async def reading_app(scope: Scope, receive: Receive, send: Send) -> None:
    while (await receive()).get("more_body"):
        pass
    # Slower than the bound once the body is complete: the bound no longer applies.
    await anyio.sleep(0.3)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def run(layer: Any, chunks: list[bytes], hang: bool) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await layer(dict(SCOPE), receiving(chunks, hang=hang), send)
    return sent


@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_the_same_answers_on_every_event_loop(backend: str) -> None:
    layer = RequestBodyTimeout(reading_app, timeout=0.1)
    options: dict[str, Any] = {}
    if backend == "uvloop":
        pytest.importorskip("uvloop")
        backend, options = "asyncio", {"use_uvloop": True}

    async def both() -> tuple[list[Message], list[Message]]:
        return await run(layer, [b"{"], True), await run(layer, [b"{", b"}"], False)

    timed_out, complete = anyio.run(both, backend=backend, backend_options=options)
    assert timed_out[0]["status"] == 408
    assert dict(timed_out[0]["headers"])[b"connection"] == b"close"
    assert b"request_timeout" in timed_out[1]["body"]
    assert [m.get("status") for m in complete] == [200, None]
    assert complete[1]["body"] == b"ok"


async def test_asyncio_uses_a_loop_timer_not_a_cancel_scope(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An anyio cancel scope per request costs several microseconds of CPU; under asyncio the
    # layer arms one loop timer instead.
    def no_scope(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a cancel scope was entered")

    monkeypatch.setattr(anyio, "CancelScope", no_scope)
    layer = RequestBodyTimeout(reading_app, timeout=0.1)
    assert (await run(layer, [b"{"], True))[0]["status"] == 408
    assert (await run(layer, [b"{", b"}"], False))[0]["status"] == 200


async def test_a_cancellation_that_is_not_the_timeout_goes_on() -> None:
    # The request's task is cancelled from outside (a server shutting down) while the body is
    # being read: no 408, the cancellation reaches the caller, and the layer's timer is gone.
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    layer = RequestBodyTimeout(reading_app, timeout=0.2)
    task = asyncio.ensure_future(layer(dict(SCOPE), receiving([b"{"], hang=True), send))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sent == []
    await asyncio.sleep(0.3)  # past the bound: a timer left armed would have fired by now
    assert sent == []


async def test_both_cancelled_at_once_the_outer_cancellation_wins() -> None:
    # The timer fires and something else cancels the task as well: the cancellation goes on
    # (as asyncio.timeout does), with no 408 sent into a request that is being torn down.
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def outer() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().call_later(0.1, task.cancel)  # the bound fires at 0.1 too
        await RequestBodyTimeout(reading_app, timeout=0.1)(
            dict(SCOPE), receiving([b"{"], hang=True), send
        )

    with pytest.raises(asyncio.CancelledError):
        await asyncio.ensure_future(outer())
    assert sent == []


async def test_the_task_is_left_uncancelled_after_a_timeout() -> None:
    # After a 408 the task carries no pending cancellation: later awaits in the same task (a
    # server's keep-alive loop) run normally.
    layer = RequestBodyTimeout(reading_app, timeout=0.05)
    assert (await run(layer, [b"{"], True))[0]["status"] == 408
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
    await asyncio.sleep(0.01)


async def test_many_requests_share_one_timer_and_only_the_slow_ones_time_out() -> None:
    # Interleaved requests, some of which never finish their body: exactly those get a 408,
    # each about when its own deadline comes, and the finished ones are not kept around.
    layer = RequestBodyTimeout(reading_app, timeout=0.2)
    loop = asyncio.get_running_loop()
    slow = {i for i in range(60) if i % 7 == 3}
    finished: dict[int, tuple[int, float]] = {}

    async def one(i: int) -> None:
        await asyncio.sleep(i * 0.005)
        started = loop.time()
        sent = await run(layer, [b"{"] if i in slow else [b"{", b"}"], i in slow)
        finished[i] = (sent[0]["status"], loop.time() - started)

    await asyncio.gather(*(one(i) for i in range(60)))
    assert {i for i, (status, _) in finished.items() if status == 408} == slow
    assert all(status == 200 for i, (status, _) in finished.items() if i not in slow)
    assert all(0.2 <= finished[i][1] < 0.35 for i in slow)  # each at its own deadline
    deadlines = layer._deadlines
    assert deadlines is not None
    assert deadlines.live == 0
    assert len(deadlines.pending) <= 32  # compacted: finished requests are dropped


async def test_an_error_raised_instead_of_the_timeout_leaves_the_task_uncancelled() -> None:
    # An inner app that turns the cancellation into an error: the error goes on, and the
    # request's task carries no cancellation of the layer's afterwards.
    async def converting(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await receive()
            await receive()
        except asyncio.CancelledError:
            raise RuntimeError("gave up") from None

    layer = RequestBodyTimeout(converting, timeout=0.05)
    with pytest.raises(RuntimeError, match="gave up"):
        await run(layer, [b"{"], True)
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0


async def test_the_path_is_resolved_once_for_the_layers_inside(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from akgate import _body_timeout, _endpoints
    from akgate._endpoints import gateway_scope

    calls: list[str] = []
    real = _endpoints.resolve

    def counting(scope: Scope, path: str) -> Any:
        calls.append(path)
        return real(scope, path)

    monkeypatch.setattr(_endpoints, "resolve", counting)
    monkeypatch.setattr(_body_timeout, "resolve", counting)
    seen: list[Any] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(gateway_scope(scope))  # what auth and validation ask
        await reading_app(scope, receive, send)

    for path, resolutions in [("/v1/chat/completions", 1), ("/v1/chat/completions/", 2)]:
        calls.clear()
        seen.clear()
        scope = {**SCOPE, "path": path, "raw_path": path.encode()}
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        await RequestBodyTimeout(inner, timeout=1)(scope, receiving([b"{}"], hang=False), send)
        assert len(calls) == resolutions, path  # a trailing slash: rewritten inside, as before
        inner_scope, resolution = seen[0]
        assert inner_scope["path"] == "/v1/chat/completions"
        assert resolution.spec.name == "chat_completions"
        assert sent[0]["status"] == 200
