"""The cancel scope of one provider call: the per-attempt timeout, the request deadline, and
the stop when the client leaves or the answer is refused.

Under asyncio (Python 3.11+) it is a small native scope: cancelling it cancels the request's own
task once (``Task.cancel``) and the scope's exit takes that cancellation back
(``Task.uncancel``), as ``asyncio.timeout`` does. An ``anyio.CancelScope`` costs several
microseconds per stream in bookkeeping (the backend lookup, its scope tree, its timer) that a
provider call that is never cancelled does not need (docs/benchmarks.md, "Routing's own
costs"). It keeps anyio's rules where they matter:

* a cancellation from outside (an outer scope, the server) is never swallowed;
* an anyio scope with ``shield=True`` inside the provider call (a connection pool closing a
  connection) is not interrupted: the cancellation waits until the shield is gone;
* a task whose wait already finished is not cancelled (its result would be lost): the
  cancellation waits one loop turn, as anyio's does.

Under other event loops (trio), on Python 3.10 (no ``Task.uncancel``), or if anyio's task
state is not what this module reads, the scope is an ``anyio.CancelScope``.
"""

from __future__ import annotations

import asyncio
import math
import sys
import weakref
from types import TracebackType
from typing import Any, Protocol

import anyio

__all__ = ["CallScope", "TaskScope", "current_time", "open_scope"]


class CallScope(Protocol):
    """What routing uses of a cancel scope (``anyio.CancelScope`` has it too)."""

    @property
    def cancelled_caught(self) -> bool: ...

    @property
    def deadline(self) -> float: ...

    @deadline.setter
    def deadline(self, value: float) -> None: ...

    def cancel(self) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...


def _anyio_task_states() -> Any:
    """anyio's per-task state on asyncio (its innermost cancel scope per task), or ``None``
    when this anyio keeps it otherwise: then every scope is an ``anyio.CancelScope``."""
    try:
        from anyio._backends import _asyncio as backend
    except ImportError:  # pragma: no cover - anyio without its asyncio backend
        return None
    states = getattr(backend, "_task_states", None)
    scope_slots = getattr(backend.CancelScope, "__slots__", ())
    state_slots = getattr(getattr(backend, "TaskState", None), "__slots__", ())
    if (
        states is None
        or not isinstance(states, weakref.WeakKeyDictionary)
        or type(getattr(states, "data", None)) is not dict
        or "_shield" not in scope_slots
        or "_parent_scope" not in scope_slots
        or "cancel_scope" not in state_slots
    ):
        return None  # pragma: no cover - a future anyio
    return states


_TASK_STATES: Any = _anyio_task_states() if sys.version_info >= (3, 11) else None
_current_task = asyncio.current_task
#: ``_TASK_STATES.get(task)`` is ``_task_states_get(_weak_ref(task))``: the weak dictionary's
#: own dict, read without its Python-level ``get`` (once per stream).
_task_states_get: Any = _TASK_STATES.data.get if _TASK_STATES is not None else None
_weak_ref = weakref.ref


class TaskScope:
    """A cancel scope over the current asyncio task (see the module docstring)."""

    __slots__ = (
        "_active",
        "_anyio_scope",
        "_cancel_called",
        "_cancelling",
        "_deadline",
        "_delivered",
        "_loop",
        "_task",
        "_timer",
        "cancelled_caught",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, deadline: float = math.inf) -> None:
        self._loop = loop
        self._deadline = deadline
        self._task: asyncio.Task[Any] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._active = False
        self._cancel_called = False
        #: ``Task.cancel()`` was called for this scope (undone on exit).
        self._delivered = False
        #: The call ended because this scope cancelled it.
        self.cancelled_caught = False
        # ``_cancelling`` and ``_anyio_scope`` are set by ``__enter__``, before any use.

    def __enter__(self) -> TaskScope:
        # (The scope's own loop: without it, current_task() looks the running loop up again,
        # which costs a system call (getpid) on Python 3.11.)
        task = _current_task(self._loop)
        if task is None or self._active or self._task is not None:
            raise RuntimeError("a TaskScope is entered once, in a task")
        self._task = task
        # (Task.cancelling/uncancel are Python 3.11+: the scope is only built there.)
        #: The task's pending cancellations before this scope (``uncancel`` returns to it).
        self._cancelling: int = task.cancelling()  # type: ignore[attr-defined]
        state = _task_states_get(_weak_ref(task))
        #: anyio's innermost scope of the task when this one was entered.
        self._anyio_scope: Any = state.cancel_scope if state is not None else None
        self._active = True
        if self._cancel_called:
            self._loop.call_soon(self._deliver)
        elif self._deadline != math.inf:
            self._timer = self._loop.call_at(self._deadline, self._expire)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._active = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._delivered:
            return False
        assert self._task is not None
        if self._task.uncancel() > self._cancelling:  # type: ignore[attr-defined]
            return False  # cancelled from outside as well: that one goes on
        if exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            self.cancelled_caught = True
            return True
        return False

    @property
    def deadline(self) -> float:
        return self._deadline

    @deadline.setter
    def deadline(self, value: float) -> None:
        if math.isnan(value):
            raise ValueError("deadline must not be NaN")
        self._deadline = value
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._active and not self._cancel_called and value != math.inf:
            self._timer = self._loop.call_at(value, self._expire)

    def cancel(self) -> None:
        if self._cancel_called:
            return
        self._cancel_called = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._active:
            return  # delivered on entry
        if _current_task() is self._task:
            # Called from the call itself (a provider's send): it is cancelled where it waits.
            self._loop.call_soon(self._deliver)
        else:
            self._deliver()

    def _expire(self) -> None:
        self._timer = None
        if not self._cancel_called:
            self._cancel_called = True
            self._deliver()

    def _deliver(self) -> None:
        """Cancel the task, which waits inside the scope (it is active and not running)."""
        if not self._active or self._delivered:
            return
        task = self._task
        assert task is not None
        waiter = getattr(task, "_fut_waiter", None)
        if (waiter is not None and waiter.done()) or self._shielded(task):
            # Its wait just finished (cancelling would lose the result), or a shielded anyio
            # scope runs: try again next loop turn, as anyio does.
            self._loop.call_soon(self._deliver)
            return
        self._delivered = True
        task.cancel()

    def _shielded(self, task: asyncio.Task[Any]) -> bool:
        """Whether the task is in an anyio scope with ``shield=True`` entered inside this one."""
        state = _TASK_STATES.get(task)
        scope = state.cancel_scope if state is not None else None
        while scope is not None and scope is not self._anyio_scope:
            if scope._shield:
                return True
            scope = scope._parent_scope
        return False


def open_scope(
    deadline: float = math.inf, loop: asyncio.AbstractEventLoop | None = None
) -> CallScope:
    """A cancel scope for one provider call, to enter in the task that makes the call.

    ``loop``: the running asyncio loop, when the caller has it at hand (looking it up costs a
    system call, ``getpid``, on Python 3.11)."""
    if _TASK_STATES is not None:
        if loop is not None:
            return TaskScope(loop, deadline)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # another event loop (trio)
            pass
        else:
            return TaskScope(loop, deadline)
    return anyio.CancelScope(deadline=deadline)


def current_time() -> float:
    """The event loop's clock (``anyio.current_time()``, without its backend lookup)."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:  # another event loop (trio)
        return anyio.current_time()
