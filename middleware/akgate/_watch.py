"""Run a call with a watcher beside it (a client-disconnect watcher) that may cancel the call.

Under asyncio the watcher is a bare task, cancelled once the call is over: an anyio task group,
its task and its cancellation cost ~40 µs of CPU per request (``docs/benchmarks.md``, "The whole
default stack"); the call runs in a cancel scope the watcher cancels, asyncio's own (the
request task's ``cancel``/``uncancel``, see ``akgate.routing._cancel``) rather than an
``anyio.CancelScope``, whose bookkeeping costs several microseconds per request. Under other
event loops (trio) the watcher runs in a task group.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

if TYPE_CHECKING:
    from .routing._cancel import CallScope

__all__ = ["Release", "run_watched"]

#: ``akgate.routing._cancel.open_scope``, imported on first use (the routing package imports
#: the adapters, which import this module).
_open_scope: Callable[[float, asyncio.AbstractEventLoop], CallScope] | None = None


async def run_watched(
    call: Callable[[], Awaitable[None]],
    watcher: Callable[[CallScope], Coroutine[Any, Any, None]],
) -> None:
    """Await ``call()`` while ``watcher(scope)`` runs; the watcher may cancel ``scope`` (the
    call's: asyncio's native scope, or under trio the task group's ``anyio.CancelScope``). The
    watcher is stopped when the call returns or raises."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # another event loop (trio)
        async with anyio.create_task_group() as group:
            group.start_soon(watcher, group.cancel_scope)
            try:
                await call()
            finally:
                group.cancel_scope.cancel()
        return
    global _open_scope
    if _open_scope is None:
        from .routing._cancel import open_scope

        _open_scope = open_scope
    with _open_scope(math.inf, loop) as scope:  # (the loop at hand: no second lookup)
        task: asyncio.Task[None] = loop.create_task(watcher(scope))
        try:
            await call()
        finally:
            task.cancel()


class Release:
    """A one-way flag others can wait for: an ``anyio.Event`` made only when someone waits
    before it is set. Creating an ``anyio.Event`` looks up the running backend (~3 µs of CPU);
    most requests set the flag without anyone waiting on it."""

    __slots__ = ("_event", "_set")

    def __init__(self) -> None:
        self._set = False
        self._event: anyio.Event | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        if self._event is not None:
            self._event.set()

    async def wait(self) -> None:
        if self._set:
            await anyio.lowlevel.checkpoint()  # as anyio.Event.wait on a set event
            return
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()
