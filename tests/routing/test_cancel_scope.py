"""Routing's per-attempt cancel scope: the native asyncio one keeps anyio's rules (an outside
cancellation goes on, a shielded anyio scope is not interrupted, a finished wait keeps its
result, nothing leaks past the scope), and trio gets an ``anyio.CancelScope``."""

from __future__ import annotations

import asyncio
import math
import sys
from typing import Any

import anyio
import pytest

from akgate.routing._cancel import TaskScope, current_time, open_scope
from tests.routing.conftest import client, stream_then_disconnect

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="the native scope needs Task.uncancel (Python 3.11+)"
)


def _pending_cancellations() -> int:
    task = asyncio.current_task()
    assert task is not None
    return task.cancelling()


async def test_asyncio_gets_the_native_scope() -> None:
    assert isinstance(open_scope(), TaskScope)
    assert current_time() == pytest.approx(asyncio.get_running_loop().time(), abs=0.5)


async def test_cancel_from_another_task_is_caught_and_leaves_no_request() -> None:
    scope = open_scope()
    reached = asyncio.Event()

    async def canceller() -> None:
        await reached.wait()
        scope.cancel()

    other = asyncio.create_task(canceller())
    with scope:
        reached.set()
        await asyncio.sleep(10)
        raise AssertionError("not cancelled")
    await other
    assert scope.cancelled_caught
    assert _pending_cancellations() == 0
    await asyncio.sleep(0)  # the task goes on normally


async def test_cancel_from_the_call_itself_lands_at_its_next_wait() -> None:
    scope = open_scope()
    after: list[str] = []
    with scope:
        scope.cancel()
        after.append("ran on")  # not cancelled in the middle of synchronous code
        await asyncio.sleep(10)
        after.append("not cancelled")
    assert after == ["ran on"]
    assert scope.cancelled_caught


async def test_cancel_that_never_lands_does_not_leak_past_the_scope() -> None:
    scope = open_scope()
    with scope:
        scope.cancel()  # the call returns before it waits again
    assert not scope.cancelled_caught
    await asyncio.sleep(0)  # would raise CancelledError if the request leaked
    await asyncio.sleep(0.01)
    assert _pending_cancellations() == 0


async def test_deadline_expires_and_can_move() -> None:
    loop = asyncio.get_running_loop()
    with open_scope(loop.time() + 0.02) as scope:
        await asyncio.sleep(10)
    assert scope.cancelled_caught

    with open_scope(loop.time() + 0.02) as scope:
        scope.deadline = math.inf  # what routing does once the first byte is out
        await asyncio.sleep(0.05)
    assert not scope.cancelled_caught

    with open_scope() as scope:
        scope.deadline = loop.time() + 0.01
        await asyncio.sleep(10)
    assert scope.cancelled_caught
    with pytest.raises(ValueError):
        scope.deadline = math.nan


async def test_cancelled_before_entry_cancels_at_the_first_wait() -> None:
    scope = open_scope()
    scope.cancel()
    with scope:
        await asyncio.sleep(10)
    assert scope.cancelled_caught


async def test_an_outside_cancellation_is_never_swallowed() -> None:
    inside = asyncio.Event()
    scopes: list[Any] = []

    async def call() -> None:
        scope = open_scope()
        scopes.append(scope)
        with scope:
            inside.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(call())
    await inside.wait()
    scopes[0].cancel()  # both at once: ours and the outside one
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    task = asyncio.create_task(call())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_outer_anyio_scope_still_cancels_through_it() -> None:
    with anyio.move_on_after(0.02) as outer:
        with open_scope() as scope:
            await asyncio.sleep(10)
    assert outer.cancelled_caught
    assert not scope.cancelled_caught


async def test_a_shielded_anyio_scope_inside_is_not_interrupted() -> None:
    steps: list[str] = []
    scope = open_scope()
    shielded = asyncio.Event()

    async def canceller() -> None:
        await shielded.wait()
        scope.cancel()

    other = asyncio.create_task(canceller())
    with scope:
        with anyio.CancelScope(shield=True):
            shielded.set()
            await asyncio.sleep(0.02)  # e.g. a connection pool closing a connection
            steps.append("shielded part done")
        await asyncio.sleep(10)
        steps.append("not cancelled")
    await other
    assert steps == ["shielded part done"]
    assert scope.cancelled_caught


async def test_an_anyio_scope_inside_lets_the_cancellation_through() -> None:
    scope = open_scope()
    asyncio.get_running_loop().call_later(0.01, scope.cancel)
    with scope:
        with anyio.CancelScope() as inner:
            await asyncio.sleep(10)
    assert scope.cancelled_caught
    assert not inner.cancelled_caught


async def test_a_finished_wait_keeps_its_result() -> None:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    scope = open_scope()
    got: list[int] = []

    async def resolver() -> None:
        await asyncio.sleep(0)
        future.set_result(7)
        scope.cancel()  # the same turn: the waiting task is about to wake with 7

    other = asyncio.create_task(resolver())
    with scope:
        got.append(await future)
        await asyncio.sleep(10)
    await other
    assert got == [7]
    assert scope.cancelled_caught


async def test_an_exception_from_the_cancelled_call_goes_on() -> None:
    scope = open_scope()
    asyncio.get_running_loop().call_later(0.01, scope.cancel)

    async def call() -> None:
        with scope:
            try:
                await asyncio.sleep(10)
            finally:
                raise RuntimeError("cleanup failed")

    with pytest.raises(RuntimeError, match="cleanup"):
        await call()
    assert not scope.cancelled_caught
    assert _pending_cancellations() == 0


async def _times_out_and_falls_back(make: Any) -> None:
    """A provider that hangs past the request's routing timeout is cancelled; the next answers."""
    app, providers = make(cheap="hang")
    async with client(app) as c:
        body = {
            "model": "alpha",
            "messages": [{"role": "user", "content": "hi"}],
            "gateway": {"routing": {"timeout_ms": 50}},
        }
        r = await c.post("/v1/chat/completions", json=body)
    assert r.json()["routing_metadata"]["provider"] == "pricey"
    assert providers["cheap"].cancelled


def test_trio_gets_an_anyio_scope_and_routing_times_out_there(make: Any) -> None:
    async def main() -> None:
        assert isinstance(open_scope(), anyio.CancelScope)
        assert current_time() > 0
        await _times_out_and_falls_back(make)

    anyio.run(main, backend="trio")


async def test_an_anyio_without_the_expected_task_state_gets_anyio_scopes(
    make: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The import-time check found an anyio whose private task state is laid out otherwise:
    routing then uses ``anyio.CancelScope`` on asyncio too, and still times out and falls back."""
    monkeypatch.setattr("akgate.routing._cancel._TASK_STATES", None)
    assert isinstance(open_scope(), anyio.CancelScope)
    await _times_out_and_falls_back(make)


def test_trio_client_disconnect_cancels_the_provider(make: Any) -> None:
    async def main() -> None:
        app, providers = make(cheap="wait_disconnect")
        payload = {"model": "alpha", "messages": [{"role": "user", "content": "hi"}]}
        await stream_then_disconnect(app, payload)
        assert providers["cheap"].cancelled

    anyio.run(main, backend="trio")
