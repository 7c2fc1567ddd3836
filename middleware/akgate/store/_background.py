"""Background runs (``background: true``): the inner call runs on after the answer, detached
from the client's connection, and is read back with ``GET``, resumed as a stream, or cancelled.

The run's worker keeps a lease on its record (renewed every third of ``lease_seconds``); a
reader that finds a queued or running record with an expired lease, and no live run in its own
process, marks it ``failed``: a run whose worker died never stays ``in_progress``. Cancels go
through the store too, so a run is cancelled from any worker. Runs are asyncio tasks (the event
loop of uvicorn, hypercorn and httpx's ASGITransport).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Final

import anyio
from pydantic_core import to_json

from akgate._asgi import dumps, replay_receive, scope_with_body, send_json
from akgate._types import Message, Receive, Scope, Send
from akgate.adapter._response import response_skeleton
from akgate.context import SCOPE_KEY, RequestContext
from akgate.errors import GatewayError, send_error

from ._base import ResponseStoreUnavailable, ResponseTooLarge, StoredResponse
from ._capture import TERMINAL_EVENTS, ResponseCapture, Turn
from ._errors import store_unavailable

if TYPE_CHECKING:
    from ._middleware import StatefulResponses

__all__ = ["BackgroundRuns"]

logger = logging.getLogger("akgate.store")

_LIVE: Final = frozenset({"queued", "in_progress"})
_WITH_TERMINAL_EVENT: Final = frozenset({"completed", "failed", "incomplete"})
_SSE_START: Final = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-store"),
        (b"x-accel-buffering", b"no"),
    ],
}


class _Run:
    """A background run executing in this process."""

    def __init__(self, turn: Turn, record: StoredResponse) -> None:
        self.turn = turn
        self.record = record
        self.events: list[tuple[int, str, bytes]] = []
        self.changed = anyio.Event()
        self.finished = anyio.Event()
        self.scope = anyio.CancelScope()
        self.cancelled = False
        self.deleted = False
        self.lock = anyio.Lock()

    def notify(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()


def _event_name(data: bytes) -> str:
    if data.startswith(b"event: "):
        return data[7 : data.find(b"\n")].decode("utf-8", "replace")
    return ""


class BackgroundRuns:
    """The background runs of one :class:`~akgate.store.StatefulResponses` layer."""

    def __init__(self, layer: StatefulResponses, *, lease_seconds: float, poll_interval: float):
        self.layer = layer
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.runs: dict[str, _Run] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    # --- reading ------------------------------------------------------------------------

    async def load(self, workspace: str, response_id: str) -> StoredResponse | None:
        """The record, with a dead worker's run turned ``failed`` (lease expired)."""
        store = self.layer.store
        record = await store.load(workspace, response_id)
        if record is not None and record.response.get("object") != "response":
            return None  # a conversation's id is not a response's
        if (
            record is not None
            and record.background
            and record.response.get("status") in _LIVE
            and response_id not in self.runs
            and record.lease_until is not None
            and record.lease_until < time.time()
        ):
            record.response["status"] = "failed"
            record.response["error"] = {
                "code": "server_error",
                "message": "The worker running this background response stopped before it "
                "finished.",
            }
            record.lease_until = None
            await store.save(record)
        return record

    # --- starting -----------------------------------------------------------------------

    async def start(
        self,
        turn: Turn,
        scope: Scope,
        child: RequestContext,
        payload: dict[str, Any],
        receive: Receive,
        send: Send,
    ) -> None:
        """Store the queued response, start the run, answer (JSON, or the run's stream)."""
        skeleton = response_skeleton(payload, turn.id, int(turn.created_at))
        skeleton["status"] = "queued"
        turn.patch(skeleton)
        record = self.layer.record_for(turn, skeleton)
        record.lease_until = time.time() + self.lease_seconds
        try:
            await self.layer.store.save(record)
        except ResponseStoreUnavailable:
            await send_error(send, store_unavailable())
            return
        run = _Run(turn, record)
        self.runs[turn.id] = run
        # The inner call always streams: events can be logged and a cancel keeps what came.
        inner = dict(child.payload or {})
        inner["stream"] = True
        body = dumps(inner)

        async def never_disconnects() -> Message:
            await anyio.sleep_forever()
            raise AssertionError("unreachable")

        run_ctx = child.child(inner, body, "responses")
        run_ctx.endpoint = child.endpoint
        run_ctx.raw_receive = never_disconnects
        run_scope = {**scope_with_body(scope, body), SCOPE_KEY: run_ctx}
        task = asyncio.get_running_loop().create_task(
            self._execute(run, run_scope, replay_receive(body, never_disconnects))
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        if turn.stream:
            await self._follow(turn.id, turn.workspace, -1, receive, send)
        else:
            await send_json(send, 200, skeleton)

    async def _execute(self, run: _Run, scope: Scope, receive: Receive) -> None:
        turn = run.turn
        store = self.layer.store

        async def discard(message: Message) -> None:
            return None

        async def on_event(seq: int, name: str, data: bytes) -> None:
            run.events.append((seq, name, data))
            if turn.stream:
                try:
                    await store.append_events(turn.id, [(seq, data)])
                except ResponseStoreUnavailable as exc:
                    logger.warning(
                        "event of response %s not stored (%s)", turn.id, type(exc).__name__
                    )
            if name == "response.in_progress" and run.record.response.get("status") == "queued":
                run.record.response["status"] = "in_progress"
                await self._save(run)
            run.notify()

        async def save_final(response: dict[str, Any], encoded: bytes) -> bytes:
            if run.cancelled or await self._cancel_flag(turn.id):
                response["status"] = "cancelled"  # sticky: a cancel wins over a late finish
                encoded = to_json(response)
            run.record.response = response
            run.record.lease_until = None
            await self._save(run)
            await self.layer.extend_conversation(turn, response)
            return encoded

        capture = ResponseCapture(turn, discard, save_final, on_event)
        try:
            with run.scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._keep_lease, run)
                    try:
                        await self.layer.app(scope, receive, capture)
                    except Exception:
                        logger.exception("background response %s failed", turn.id)
                    tg.cancel_scope.cancel()
            if capture.final is None:
                cancelled = run.cancelled or await self._cancel_flag(turn.id)
                response = dict(run.record.response)
                response["status"] = "cancelled" if cancelled else "failed"
                if not cancelled:
                    response["error"] = {
                        "code": "server_error",
                        "message": "The background response ended without a result.",
                    }
                run.record.response = response
                run.record.lease_until = None
                await self._save(run)
        except Exception as exc:  # the store failed at the end: the lease will say failed
            logger.warning("background response %s: %s", turn.id, type(exc).__name__)
        finally:
            self.runs.pop(turn.id, None)
            run.finished.set()
            run.notify()

    async def _save(self, run: _Run) -> None:
        async with run.lock:  # heartbeat and progress saves never overtake each other
            if run.deleted:
                return  # DELETE won: saving now would bring the record back
            try:
                await self.layer.store.save(run.record)
            except (ResponseStoreUnavailable, ResponseTooLarge) as exc:
                logger.warning(
                    "background response %s not saved (%s)", run.turn.id, type(exc).__name__
                )

    async def _cancel_flag(self, response_id: str) -> bool:
        try:
            return await self.layer.store.cancel_requested(response_id)
        except ResponseStoreUnavailable:
            return False

    async def _keep_lease(self, run: _Run) -> None:
        """Renew the lease; notice a cancel made in another worker."""
        renew_at = time.monotonic() + self.lease_seconds / 3
        while True:
            await anyio.sleep(min(self.poll_interval * 5, self.lease_seconds / 3))
            if await self._cancel_flag(run.turn.id):
                run.cancelled = True
                turn = run.turn
                try:
                    gone = await self.layer.store.load(turn.workspace, turn.id) is None
                except ResponseStoreUnavailable:
                    gone = False
                run.deleted = gone  # deleted in another worker: do not bring it back
                run.scope.cancel()
                return
            if time.monotonic() >= renew_at:
                renew_at = time.monotonic() + self.lease_seconds / 3
                run.record.lease_until = time.time() + self.lease_seconds
                await self._save(run)

    # --- streaming ----------------------------------------------------------------------

    async def stream(
        self, record: StoredResponse, starting_after: int, receive: Receive, send: Send
    ) -> None:
        """``GET ...?stream=true``: the stored events after ``starting_after``, then live ones."""
        if not record.stream:
            raise GatewayError(
                "invalid_request",
                "Streaming is not enabled for this response: only background responses "
                "created with stream: true can be streamed again.",
                "stream",
            )
        await self._follow(record.id, record.workspace, starting_after, receive, send)

    async def _follow(
        self, response_id: str, workspace: str, after: int, receive: Receive, send: Send
    ) -> None:
        await send(_SSE_START)
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                try:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                except Exception:
                    pass
                tg.cancel_scope.cancel()  # the client left; the run goes on

            tg.start_soon(watch)
            try:
                await self._replay(response_id, workspace, after, send)
            except ResponseStoreUnavailable as exc:
                logger.warning("stream of %s ended: %s", response_id, type(exc).__name__)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            tg.cancel_scope.cancel()

    async def _replay(self, response_id: str, workspace: str, after: int, send: Send) -> None:
        last = after
        final_waits = 10
        while True:
            run = self.runs.get(response_id)
            if run is not None:
                changed = run.changed
                new = [e for e in run.events if e[0] > last]
            else:
                new = [
                    (seq, _event_name(data), data)
                    for seq, data in await self.layer.store.events_after(response_id, last)
                ]
            for seq, name, data in new:
                await send({"type": "http.response.body", "body": data, "more_body": True})
                last = max(last, seq)
                if name in TERMINAL_EVENTS:
                    return
            if run is not None:
                if not new:
                    with anyio.move_on_after(self.poll_interval * 10):
                        await changed.wait()
                continue
            if not new:
                record = await self.load(workspace, response_id)
                status = record.response.get("status") if record is not None else None
                if status in _LIVE:
                    await anyio.sleep(self.poll_interval)
                elif status in _WITH_TERMINAL_EVENT and final_waits:
                    # The run saves its final record just before it logs the terminal event.
                    final_waits -= 1
                    await anyio.sleep(self.poll_interval)
                else:
                    return  # ended without a terminal event (cancelled, or its worker died)

    # --- cancel -------------------------------------------------------------------------

    async def cancel(self, record: StoredResponse) -> dict[str, Any]:
        """``POST .../cancel``: idempotent, and ``cancelled`` is final."""
        if not record.background:
            raise GatewayError(
                "invalid_request", "Only background responses can be cancelled.", None
            )
        if record.response.get("status") not in _LIVE:
            return record.response
        await self.layer.store.request_cancel(record.id)
        run = self.runs.get(record.id)
        if run is not None:
            run.cancelled = True
            run.scope.cancel()
            with anyio.move_on_after(5):
                await run.finished.wait()
            return run.record.response
        # Running in another worker: it sees the flag within a poll and ends as cancelled.
        record.response["status"] = "cancelled"
        await self.layer.store.save(record)
        return record.response

    async def stop_for_delete(self, workspace: str, response_id: str) -> None:
        """``DELETE`` of a running run: stop it here, or flag it for the worker running it."""
        run = self.runs.get(response_id)
        if run is not None and run.turn.workspace == workspace:
            run.cancelled = True
            run.deleted = True
            run.scope.cancel()

    async def aclose(self) -> None:
        for run in list(self.runs.values()):
            run.scope.cancel()
        for task in list(self.tasks):
            task.cancel()
