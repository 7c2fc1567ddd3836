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
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from .routing._cancel import CallScope

__all__ = ["run_watched"]

#: ``akgate.routing._cancel.open_scope``, imported on first use (the routing package imports
#: the adapters, which import this module).
_open_scope: Callable[[], CallScope] | None = None


async def run_watched(
    call: Callable[[], Awaitable[None]],
    watcher: Callable[[Any], Coroutine[Any, Any, None]],
) -> None:
    """Await ``call()`` while ``watcher(scope)`` runs; the watcher may cancel ``scope`` (the
    call's: its one method the watcher may use is ``cancel()``; Any, because watchers written
    for an ``anyio.CancelScope`` take this one too). The watcher is stopped when the call
    returns or raises."""
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
    with _open_scope() as scope:
        task: asyncio.Task[None] = loop.create_task(watcher(scope))
        try:
            await call()
        finally:
            task.cancel()
