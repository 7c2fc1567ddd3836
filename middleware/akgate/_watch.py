"""Run a call with a watcher beside it (a client-disconnect watcher) that may cancel the call.

Under asyncio the watcher is a bare task, cancelled once the call is over: an anyio task group,
its task and its cancellation cost ~40 µs of CPU per request (``docs/benchmarks.md``, "The whole
default stack"); the call runs in a plain cancel scope the watcher cancels. Under other event
loops (trio) the watcher runs in a task group.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import anyio

__all__ = ["run_watched"]


async def run_watched(
    call: Callable[[], Awaitable[None]],
    watcher: Callable[[anyio.CancelScope], Coroutine[Any, Any, None]],
) -> None:
    """Await ``call()`` while ``watcher(scope)`` runs; the watcher may cancel ``scope`` (the
    call's). The watcher is stopped when the call returns or raises."""
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
    with anyio.CancelScope() as scope:
        task: asyncio.Task[None] = loop.create_task(watcher(scope))
        try:
            await call()
        finally:
            task.cancel()
