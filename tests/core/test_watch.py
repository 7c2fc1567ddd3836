"""``run_watched``: a call with a watcher beside it that may cancel the call.

Under asyncio the call's scope is asyncio's own (no ``anyio.CancelScope`` per call, which costs
several microseconds); the rules are those of a cancel scope on every loop: the watcher's
cancellation stops the call and is swallowed, anyone else's goes on, and the watcher is stopped
once the call is over.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from akgate._watch import Release, run_watched


def watcher_after(delay: float, log: list[str]) -> Any:
    async def watcher(scope: Any) -> None:
        try:
            await anyio.sleep(delay)
        except BaseException:
            log.append("watcher stopped")
            raise
        log.append("watcher cancels")
        scope.cancel()

    return watcher


async def slow_call(log: list[str]) -> None:
    try:
        await anyio.sleep(5)
    except BaseException:
        log.append("call cancelled")
        raise
    log.append("call done")  # pragma: no cover - the test fails if it gets here


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_watcher_cancels_the_call_and_the_cancellation_stays_inside(backend: str) -> None:
    log: list[str] = []

    async def main() -> None:
        with anyio.fail_after(3):
            await run_watched(lambda: slow_call(log), watcher_after(0.01, log))
        log.append("returned")
        await anyio.lowlevel.checkpoint()  # nothing of the watcher's cancellation is left

    anyio.run(main, backend=backend)
    assert log == ["watcher cancels", "call cancelled", "returned"]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_watcher_is_stopped_when_the_call_returns(backend: str) -> None:
    log: list[str] = []

    async def quick() -> None:
        log.append("call done")

    async def main() -> None:
        with anyio.fail_after(3):  # a watcher left running would keep trio's group open
            await run_watched(quick, watcher_after(0.2, log))
        await anyio.sleep(0.3)  # past the watcher's own time: it would have cancelled by now

    anyio.run(main, backend=backend)
    # (A watcher task cancelled before its first step never logs that it stopped.)
    assert log[0] == "call done"
    assert "watcher cancels" not in log


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_cancellation_from_outside_goes_on(backend: str) -> None:
    log: list[str] = []

    async def main() -> None:
        with anyio.move_on_after(0.05) as outer:
            await run_watched(lambda: slow_call(log), watcher_after(5, log))
            log.append("not reached")  # pragma: no cover
        assert outer.cancelled_caught

    anyio.run(main, backend=backend)
    assert "call cancelled" in log
    assert "watcher cancels" not in log


async def test_asyncio_enters_no_anyio_cancel_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_scope(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an anyio cancel scope was entered")

    log: list[str] = []
    monkeypatch.setattr(anyio, "CancelScope", no_scope)
    await run_watched(lambda: slow_call(log), watcher_after(0.01, log))
    assert log == ["watcher cancels", "call cancelled"]
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_release_wakes_its_waiters_and_lets_later_ones_through(backend: str) -> None:
    async def main() -> list[str]:
        release = Release()
        log: list[str] = []

        async def waiter(name: str) -> None:
            await release.wait()
            log.append(name)

        async with anyio.create_task_group() as group:
            group.start_soon(waiter, "early")
            await anyio.sleep(0.01)
            assert log == []
            assert not release.is_set()
            release.set()
        await waiter("late")  # already set: returns at once (after a checkpoint)
        return log

    assert anyio.run(main, backend=backend) == ["early", "late"]


async def test_a_release_set_before_anyone_waits_makes_no_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_event() -> Any:
        raise AssertionError("an anyio.Event was made")

    monkeypatch.setattr(anyio, "Event", no_event)
    release = Release()
    release.set()
    await release.wait()
    assert release.is_set()
