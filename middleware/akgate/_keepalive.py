"""``SSEKeepAlive``: SSE comment heartbeats on idle chat and Responses streams.

Long reasoning or a slow upstream can leave a stream silent for minutes, and proxies and load
balancers cut connections that stay idle that long. Once a stream has sent nothing for
``interval`` seconds, this layer sends an SSE comment (``: keep-alive``), which every SSE client
ignores: it is not an event, so it carries no ``sequence_number`` and changes none.

A heartbeat only goes out between events (after a blank line), never inside one, and the
inner app's bytes are forwarded as they come: the layer holds nothing back. The inner app's
``send`` and the heartbeat's never overlap, since an ASGI ``send`` must not run twice at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Final

import anyio
import anyio.abc

from ._asgi import route_path
from ._types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DEFAULT_HEARTBEAT_PATHS", "SSEKeepAlive"]

#: The streaming endpoints heartbeats are sent on (canonical paths).
DEFAULT_HEARTBEAT_PATHS: Final = ("/v1/chat/completions", "/v1/responses", "/v1/messages")
_COMMENT: Final = b": keep-alive\n\n"
_EVENT_ENDS: Final = (b"\n\n", b"\r\n\r\n", b"\r\r")


class SSEKeepAlive:
    """Send ``: keep-alive`` after ``interval`` idle seconds on SSE responses of ``paths``.

    Options (keyword-only):

    * ``interval``: idle seconds before a heartbeat (then one per idle interval).
    * ``paths``: the request paths whose ``text/event-stream`` responses get heartbeats.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        interval: float = 15.0,
        paths: Iterable[str] = DEFAULT_HEARTBEAT_PATHS,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0 seconds")
        self.app = app
        self.interval = interval
        self.paths = frozenset(paths)

    def __repr__(self) -> str:
        return f"SSEKeepAlive({self.app!r}, interval={self.interval})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or route_path(scope).rstrip("/") not in self.paths:
            await self.app(scope, receive, send)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # another event loop (trio): the heartbeat is a task in a group
            await self._in_task_group(scope, receive, send)
            return
        # asyncio: one timer per stream, nothing at all for a JSON answer. A task group per
        # request and a waiting task per stream cost ~10 and ~40 µs of CPU
        # (docs/benchmarks.md, "SSE heartbeats").
        stream = _TimerStream(send, self.interval, loop)
        try:
            await self.app(scope, receive, stream.send)
        finally:
            if stream.sse:  # (a JSON answer never started the timer)
                stream.stop()

    async def _in_task_group(self, scope: Scope, receive: Receive, send: Send) -> None:
        error: Exception | None = None
        async with anyio.create_task_group() as tasks:
            stream = _TaskStream(send, self.interval, tasks)
            try:
                await self.app(scope, receive, stream.send)
            except Exception as exc:
                # Re-raised below as it is: a task group would wrap it in an ExceptionGroup.
                error = exc
            finally:
                stream.stop()  # the heartbeat task returns by itself: nothing is cancelled
        if error is not None:
            try:
                raise error
            finally:
                del error  # no frame <-> traceback cycle


class _Stream:
    """One response: forwards the inner app's messages and beats while it is idle.

    ASGI sends must never overlap: the inner app's send waits while a heartbeat is on the wire,
    and a heartbeat skips its turn while the inner app is sending (the stream is not idle).
    Flags and events rather than a lock, because a lock's checkpoint on every chunk costs more
    than the heartbeat saves. Subclasses schedule the beats (:meth:`start`, :meth:`stop`).
    """

    __slots__ = (
        "at_boundary",
        "beating",
        "clock",
        "finished",
        "interval",
        "last_sent",
        "real_send",
        "sending",
        "sse",
    )

    def __init__(self, send: Send, interval: float, clock: Callable[[], float]) -> None:
        # Only what every response needs: a JSON answer (most of them) never reads the rest,
        # which ``_begin`` sets once an event stream starts.
        self.clock = clock
        self.real_send = send
        self.interval = interval
        self.sse = False  # an event stream started: beats are scheduled
        self.finished = False  # the response ended (or the layer returned)

    def _begin(self) -> None:
        """The state of an event stream (before its first beat is scheduled)."""
        self.sse = True
        #: Set while a heartbeat is being sent.
        self.beating: anyio.Event | None = None
        self.sending = False
        self.last_sent = 0.0
        self.at_boundary = True

    def start(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def send(self, message: Message) -> None:
        if not self.sse:
            if message["type"] == "http.response.start" and _is_sse(message):
                self._begin()
                self.start()
            await self.real_send(message)
            return
        beating = self.beating
        if beating is not None:
            await beating.wait()
        self.sending = True
        try:
            await self.real_send(message)
        finally:
            self.sending = False
        if message["type"] == "http.response.body":
            body = message.get("body", b"")
            if body:
                self.last_sent = self.clock()
                self.at_boundary = body.endswith(_EVENT_ENDS)
            if not message.get("more_body", False):
                self.stop()

    def idle_for(self, now: float) -> float | None:
        """Seconds to wait before the next beat, or ``None`` when one is due now."""
        wait = self.last_sent + self.interval - now
        if wait > 0:
            return wait
        if self.sending or not self.at_boundary:
            # Not idle, or mid-event (a comment would split the event): wait a full interval.
            self.last_sent = now
            return self.interval
        return None

    async def beat(self) -> bool:
        """Send one heartbeat; ``False`` when the client has left (no more beats)."""
        beating = self.beating = anyio.Event()
        try:
            await self.real_send(
                {"type": "http.response.body", "body": _COMMENT, "more_body": True}
            )
        except Exception:
            return False  # the client left: the inner app finds out on its own next send
        finally:
            self.beating = None
            beating.set()
        self.last_sent = self.clock()
        return True


class _TimerStream(_Stream):
    """Beats scheduled with the asyncio loop's timer: a due beat runs as its own short task."""

    __slots__ = ("handle", "loop", "task")

    def __init__(self, send: Send, interval: float, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(send, interval, loop.time)
        self.loop = loop
        self.handle: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.last_sent = self.loop.time()
        self.handle = self.loop.call_at(self.last_sent + self.interval, self._due)

    def stop(self) -> None:
        self.finished = True
        # Dropped, not only cancelled: the handle and the task refer back to this stream.
        handle, self.handle = self.handle, None
        if handle is not None:
            handle.cancel()
        task, self.task = self.task, None
        if task is not None:
            task.cancel()

    def _due(self) -> None:
        self.handle = None
        if self.finished:
            return
        wait = self.idle_for(self.loop.time())
        if wait is not None:
            self.handle = self.loop.call_later(wait, self._due)
        else:
            self.task = self.loop.create_task(self._beat())

    async def _beat(self) -> None:
        # Checked again in this task's own first step: the inner app may have started a send
        # since the timer fired, and nothing may run between this check and the beat's start.
        if self.finished:
            return
        wait = self.idle_for(self.loop.time())
        if wait is not None:
            self.handle = self.loop.call_later(wait, self._due)
        elif not await self.beat():
            self.finished = True
        if not self.finished and self.handle is None:
            self.handle = self.loop.call_at(self.last_sent + self.interval, self._due)
        self.task = None


class _TaskStream(_Stream):
    """Beats from a waiting task in the request's task group (event loops other than asyncio)."""

    __slots__ = ("done", "tasks")

    def __init__(self, send: Send, interval: float, tasks: anyio.abc.TaskGroup) -> None:
        super().__init__(send, interval, anyio.current_time)
        self.tasks = tasks
        self.done: anyio.Event | None = None

    def start(self) -> None:
        self.done = anyio.Event()
        self.last_sent = anyio.current_time()
        self.tasks.start_soon(self._run, self.done)

    def stop(self) -> None:
        self.finished = True
        if self.done is not None:
            self.done.set()

    async def _run(self, done: anyio.Event) -> None:
        while not done.is_set():
            with anyio.move_on_after(self.last_sent + self.interval - anyio.current_time()):
                await done.wait()
            if done.is_set():
                return
            if self.idle_for(anyio.current_time()) is None and not await self.beat():
                return


def _is_sse(message: Message) -> bool:
    for name, value in message.get("headers", ()):
        # (``find_header`` for one name: only a 12-byte name is lowered, not every one.)
        if len(name) == 12 and name.lower() == b"content-type":
            return _is_event_stream(value)
    return False


def _is_event_stream(content_type: bytes) -> bool:
    return bool(content_type.split(b";")[0].strip().lower() == b"text/event-stream")
