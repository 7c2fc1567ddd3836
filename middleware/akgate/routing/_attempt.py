"""One provider call of a routed request: the state machine that holds the response start
until the attempt succeeds (first body byte of the answer asked for) or fails in a way that lets
the next provider be tried, then relays the answer with ``routing_metadata``."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Literal

from akgate._asgi import CR, JSON_ANSWER, LF, response_cap
from akgate._types import Message, Receive, Send
from akgate.adapter._answer import ANSWER_SLOT
from akgate.context import Endpoint, RequestContext
from akgate.errors import GatewayError, send_error
from akgate.sse import MAX_EVENT_SIZE

from ._cancel import CallScope
from ._cost import compute_cost, plain_chat_cost, token_counts
from ._metadata import (
    ChatStreamRewriter,
    MessagesStreamRewriter,
    ResponsesStreamRewriter,
    inject_json,
    merge_warnings,
)
from ._provider_errors import client_error, provider_message, upstream_fault
from ._strategies import Needs, Route
from ._stream_check import first_event, single_json_event

__all__ = ["MAX_JSON_RESPONSE_SIZE", "Attempt", "Mode", "Plan", "attempt_outcome"]

logger = logging.getLogger("akgate.routing")

#: Provider statuses that move on to the next candidate. 401/403 mean the provider's own key is
#: wrong: never the client's fault, so they are not forwarded as such.
_RETRYABLE: Final = frozenset({401, 403, 408, 425, 429})
_FAIL_BODY_CAP: Final = 65536
#: A JSON answer is held whole (to add routing_metadata): a larger one counts as a failed attempt.
MAX_JSON_RESPONSE_SIZE: Final = 32 * 1024 * 1024

#: What the attempt does with the provider's body, decided by its ``http.response.start``:
#:
#: - ``pending``: no start yet;
#: - ``sse``: a 2xx event stream, committed at its first complete event and rewritten as it flows;
#: - ``json``: a 2xx JSON answer, held whole (up to ``cap``) to add ``routing_metadata``;
#: - ``client_error``: the client's own error (a 4xx other than the retryable ones): held
#:   (bounded) and answered in the endpoint's envelope (``_provider_errors.client_error``);
#: - ``raw``: any other status: forwarded unchanged;
#: - ``fail``: a retryable status (5xx, 401, 403, 408, 425, 429): the body is kept (bounded) for
#:   the log and the next provider is tried;
#: - ``too_large``: a JSON answer over ``cap``: dropped, the next provider is tried;
#: - ``bad``: not the answer asked for (not JSON, JSON for a stream, a stream that is not SSE of
#:   JSON): refused before the first byte, the next provider is tried.
Mode = Literal["pending", "sse", "json", "client_error", "raw", "fail", "too_large", "bad"]


@dataclasses.dataclass(slots=True)
class Plan:
    """What the plan step decided for one request: the routes to try, in order, and how.
    (Not frozen: a frozen dataclass sets each field through ``object.__setattr__``, a
    microsecond per request; nothing writes to a plan once made.)"""

    endpoint: Endpoint
    payload: dict[str, Any]
    routes: list[Route]
    routing: Mapping[str, Any]
    stream: bool
    strategy: str
    needs: Needs


class Attempt:
    """One provider call: holds the response start until success or retryable failure."""

    __slots__ = (
        "buffer",
        "cancel",
        "cap",
        "client_send",
        "clock",
        "committed",
        "ctx",
        "deadline",
        "disconnected",
        "exc",
        "finished",
        "metadata",
        "mode",
        "plan",
        "raw_receive",
        "rejected",
        "rewriter",
        "route",
        "size",
        "start",
        "t0",
        "t_first",
        "t_start",
        "tps",
        "warnings",
    )

    def __init__(  # (positional: a dozen keywords cost a dict per attempt)
        self,
        route: Route,
        plan: Plan,
        ctx: RequestContext,
        client_send: Send,
        raw_receive: Receive,
        clock: Callable[[], float],
        t0: float,
        warnings: list[dict[str, str]],
        deadline: float,
        cancel: CallScope | None,
        request_size: int,
    ) -> None:
        """``route``: the provider and model tried; ``plan``: the request's plan;
        ``ctx``: the client's request context (warnings and metadata land there);
        ``client_send`` / ``raw_receive``: the client's channel (``raw_receive`` is the receive
        after the body); ``clock``/``t0``: the routing clock and the request's start on it;
        ``warnings``: this attempt's own warnings, adopted when it reaches the client;
        ``deadline``: the request's deadline (event loop time, ``inf`` for none), which replaces
        the per-attempt timeout once the first byte is out; ``cancel``: the scope the provider
        call runs in (``None``: not cancellable); ``request_size``: the attempt's request body
        size, which raises the JSON answer cap (an answer may echo its request)."""
        self.route = route
        self.plan = plan
        self.ctx = ctx
        self.client_send = client_send
        self.raw_receive = raw_receive
        self.clock = clock
        self.t0 = t0
        self.t_start = clock()
        self.t_first: float | None = None
        self.warnings = warnings
        self.deadline = deadline
        self.start: Message | None = None
        self.mode: Mode = "pending"
        self.committed = False
        self.finished = False
        self.disconnected = False
        #: The provider's answer was refused before the first byte (not the stream asked for).
        self.rejected = False
        self.exc: BaseException | None = None
        self.buffer: list[bytes] = []
        self.size = 0
        #: The JSON answer cap of this attempt (see ``response_cap``).
        self.cap = response_cap(MAX_JSON_RESPONSE_SIZE, request_size)
        self.rewriter: (
            ChatStreamRewriter | ResponsesStreamRewriter | MessagesStreamRewriter | None
        ) = None
        self.cancel = cancel
        self.metadata: dict[str, Any] | None = None
        self.tps: float | None = None

    def release(self) -> None:
        """Drop the rewriter, which calls back into this attempt (``finalize``): without that
        reference cycle a stream's state is freed at once, not by the garbage collector."""
        self.rewriter = None

    # -- the provider's receive and send ----------------------------------------------------
    async def relay(self) -> Message:
        """The client's ``receive`` after the replayed body, as the provider sees it."""
        message = await self.raw_receive()
        if message["type"] == "http.disconnect" and not self.finished:
            # The client left mid-response: cancel the provider call (and its upstream request).
            # (Servers also answer receive() with a disconnect once the response is complete.)
            self.disconnected = True
            if self.cancel is not None:
                self.cancel.cancel()
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            mode = self.mode
            body: bytes = message.get("body", b"")
            more = message.get("more_body", False)
            if mode == "sse":
                rewriter = self.rewriter
                assert rewriter is not None
                if self.committed:
                    out = rewriter.feed(body) if body else b""
                elif not body and more:
                    return  # nothing yet: keep the start held
                elif (first := single_json_event(body) if not self.buffer else None) is not None:
                    # The usual first chunk, one whole JSON event: checked and parsed once.
                    await self._commit(stream=True)
                    out = rewriter.feed_event(body, first)
                else:
                    held = self._hold_first_event(body, more)
                    if held is None:
                        return  # the first event is incomplete, or the stream was refused
                    await self._commit(stream=True)
                    if held is not body:
                        body = held
                        message = {"type": kind, "body": body, "more_body": more}
                    out = rewriter.feed(body) if body else b""
                if not more:
                    out += rewriter.close()
                    self.finished = True
                    try:  # (``_to_client``, inlined here and below: a coroutine less)
                        await self.client_send({"type": kind, "body": out, "more_body": False})
                    except OSError:
                        self._client_gone()
                elif out is body:
                    # Unchanged: forward the message itself (the per-chunk path: no extra frame).
                    try:
                        await self.client_send(message)
                    except OSError:
                        self._client_gone()
                elif out:
                    await self._to_client({"type": kind, "body": out, "more_body": True})
                if rewriter.overflowed and more and self.cancel is not None:
                    # The stream already ended with its error event: stop the provider.
                    self.cancel.cancel()
                return
            if mode == "bad":
                return  # refused before the first byte: the next provider is tried
            if mode == "client_error":
                if self.size < _FAIL_BODY_CAP:
                    self.buffer.append(body)
                    self.size += len(body)
                if not more:
                    await self._send_client_error()
                return
            if mode == "json" and not more and not self.buffer and len(body) <= self.cap:
                # The usual JSON answer, whole in one message: nothing to gather.
                self.finished = True
                await self._send_json(body)
                return
            if mode == "json" or mode == "fail" or mode == "too_large":
                if mode == "json" and self.size + len(body) > self.cap:
                    self.mode = mode = "too_large"  # never committed: the next provider is tried
                    self.buffer = []
                if mode == "json" or (mode == "fail" and self.size < _FAIL_BODY_CAP):
                    self.buffer.append(body)
                    self.size += len(body)
                if not more:
                    self.finished = mode == "json"
                    if mode == "json":
                        buffer = self.buffer
                        self.buffer = []
                        await self._send_json(buffer[0] if len(buffer) == 1 else b"".join(buffer))
                return
            if not self.committed:
                await self._commit(stream=False)
            self.finished = not more
            await self._to_client(message)
            return
        if kind == "http.response.start":
            if self.start is not None:
                raise RuntimeError("provider sent http.response.start twice")
            self.start = message
            status = message["status"]
            if 200 <= status < 300:
                ctype = _content_type(message.get("headers", ()))
                sse = ctype.find(b"text/event-stream") >= 0
                if not sse and (self.plan.stream or ctype.find(b"json") < 0):
                    # 200 text/plain, or JSON for a stream: not what was asked for, so a failed
                    # attempt before the first byte (the next provider is tried).
                    self._reject()
                    return
                if sse:
                    self.mode = "sse"
                    self.rewriter = _REWRITERS[self.plan.endpoint](
                        self.finalize, self.route.provider.name
                    )
                else:
                    self.mode = "json"
            elif status >= 500 or status in _RETRYABLE:
                self.mode = "fail"
            elif status >= 400:
                self.mode = "client_error"  # the client's own error: in the endpoint's envelope
            else:
                self.mode = "raw"  # forwarded unchanged
            return
        # pathsend, trailers, debug ...: forwarded unchanged (dropped for a failing attempt).
        if self.mode in ("fail", "too_large", "bad", "client_error"):
            return
        if self.start is not None and not self.committed:
            await self._commit(stream=False)
        await self._to_client(message)

    def _hold_first_event(self, body: bytes, more: bool) -> bytes | None:
        """The bytes to commit with once the first event is known to be a JSON event; ``None``
        while it is incomplete, or when the stream is refused (not SSE of JSON)."""
        self.buffer.append(body)
        self.size += len(body)
        if more and LF not in body and CR not in body:
            # No blank line can have completed: don't rescan (a trickled event stays linear).
            if self.size > MAX_EVENT_SIZE:
                self._reject()
            return None
        held = body if len(self.buffer) == 1 else b"".join(self.buffer)
        state = first_event(held)
        if state == "more" and not more:
            state = first_event(held + b"\n\n")  # a last event without its blank line
            if state == "more":
                state = "bad"  # the stream ended without a single event
        if state == "more":
            return None
        self.buffer = []
        self.size = 0
        if state == "bad":
            self._reject()
            return None
        return held

    def _reject(self) -> None:
        self.mode = "bad"
        self.rejected = True
        self.buffer = []
        if self.cancel is not None:
            self.cancel.cancel()  # stop reading a stream we will not use

    async def _to_client(self, message: Message) -> None:
        try:
            await self.client_send(message)
        except OSError:
            self._client_gone()

    def _client_gone(self) -> None:
        # ASGI >= 2.4 servers raise on a closed connection: stop the provider.
        self.disconnected = True
        if self.cancel is not None:
            self.cancel.cancel()

    async def _commit(self, *, stream: bool) -> None:
        start = self.start
        assert start is not None
        headers = start.get("headers", ())
        if stream:
            headers = _without_content_length(headers)
        self.committed = True
        self.t_first = self.clock()
        if self.warnings:
            self._adopt_warnings()
        cancel = self.cancel
        if cancel is not None and cancel.deadline != self.deadline:
            # The per-attempt timeout covers the wait for the first byte; the deadline remains.
            cancel.deadline = self.deadline
        try:
            await self.client_send({**start, "headers": headers})
        except OSError:
            self._client_gone()

    def _adopt_warnings(self) -> None:
        for w in self.warnings:
            self.ctx.warn(w["type"], w["code"], w["message"])

    async def _send_json(self, buffered: bytes) -> None:
        """Send the provider's whole JSON answer ``buffered`` with ``routing_metadata``."""
        start = self.start
        assert start is not None
        # The adapter's Response object when these are its bytes (akgate.adapter._answer).
        state = self.ctx.state
        slot = state.get(ANSWER_SLOT)
        answer = state.get(JSON_ANSWER)
        if slot is not None and buffered is slot.body:
            body = inject_json(buffered, self._commit_json, slot.response)
            if body is not None:
                slot.fill(slot.response, body)
        elif answer is not None and buffered is answer[0] and type(answer[1]) is dict:
            # An in-process app's own object for these very bytes (akgate._asgi.JSON_ANSWER).
            body = inject_json(buffered, self._commit_json, answer[1])
        else:
            body = inject_json(buffered, self._commit_json)
        if body is None:
            # Not a JSON object (e.g. a body cut short): a failed attempt, never a 200 with it.
            self.finished = False
            return
        headers = _without_content_length(start.get("headers", ()), copy=True)
        headers.append((b"content-length", str(len(body)).encode("latin-1")))
        try:
            await self.client_send({**start, "headers": headers})
        except OSError:
            self._client_gone()
        try:
            await self.client_send({"type": "http.response.body", "body": body, "more_body": False})
        except OSError:
            self._client_gone()

    def _commit_json(self, usage: Any) -> dict[str, Any]:
        """``inject_json``'s finalize: only once the body parsed, as the attempt's warnings
        belong in its metadata."""
        self.committed = True
        self.t_first = self.clock()
        if self.warnings:
            self._adopt_warnings()
        return self.finalize(usage)

    async def _send_client_error(self) -> None:
        """A provider's 4xx: as it came when it is the endpoint's valid envelope, else ours."""
        start = self.start
        assert start is not None
        body = b"".join(self.buffer)
        self.buffer = []
        self.finished = True
        name = self.route.provider.name
        error = client_error(
            start["status"],
            body,
            provider=name,
            model=self.route.metadata_head.get("provider_model_id"),
            endpoint=self.plan.endpoint,
        )
        if error is None:
            await self._commit(stream=False)
            await self._to_client({"type": "http.response.body", "body": body})
            return
        self.committed = True
        self.t_first = self.clock()
        await send_error(self.client_send, error, ctx=self.ctx)

    def finalize(self, usage: Any) -> dict[str, Any]:
        """``routing_metadata`` for this attempt, from the provider's usage."""
        route = self.route
        offering = route.offering
        now = self.clock()
        metadata: dict[str, Any] = {**route.metadata_head, "routing_strategy": self.plan.strategy}
        output = 0  # output tokens, for the throughput
        plain = plain_chat_cost(usage, offering)  # the usual usage, in one call
        counted: tuple[int, int] | None = None
        if plain is not None:
            prompt, output, metadata["cost"] = plain
            counted = (prompt, output)
        else:
            tokens = token_counts(usage)
            if tokens is not None:
                output = tokens.output
                counted = (tokens.input, output)
                metadata["cost"] = compute_cost(tokens, offering)
        if counted is not None:
            state = self.ctx.state["routing"]
            # For the operations layers (access log, metrics, traces): the provider's counts.
            state["tokens"] = counted
            state["usage"] = usage  # the ledger's token counts
        t_first = self.t_first if self.t_first is not None else now
        # Measurements to 0.1 ms and 0.01 token/s: ``round(x * 10) / 10`` gives them, where
        # ``round(x, 1)`` formats the float in decimal first (~0.5 µs each).
        if self.mode == "sse":
            metadata["ttft_ms"] = round(max(0.0, t_first - self.t0) * 10_000) / 10
            elapsed = now - t_first
        else:
            elapsed = now - self.t_start
        if output and elapsed > 0:
            self.tps = output / elapsed
            metadata["throughput_tps"] = round(self.tps * 100) / 100
        if self.ctx.warnings:
            metadata["warnings"] = merge_warnings(self.ctx.warnings)
        if offering.tier is not None:
            metadata["tier"] = offering.tier
        self.metadata = metadata
        return metadata

    def failure(self, timed_out: bool) -> GatewayError:
        """The error this failed attempt stands for, should it be the last one."""
        name = self.route.provider.name
        if timed_out:
            return GatewayError(
                "upstream_timeout", f"Provider '{name}' did not respond in time.", provider=name
            )
        if self.exc is not None:
            return GatewayError(
                "upstream_error",
                f"Provider '{name}' failed ({type(self.exc).__name__}).",
                provider=name,
            )
        if self.mode == "bad":
            return GatewayError(
                "upstream_error",
                f"Provider '{name}' returned an invalid response (not the JSON or event stream "
                "that was asked for).",
                provider=name,
            )
        if self.mode == "too_large":
            return GatewayError(
                "upstream_error",
                f"Provider '{name}' returned a response larger than {self.cap} bytes.",
                provider=name,
            )
        start = self.start
        if start is None or self.mode != "fail":
            return GatewayError(
                "upstream_error",
                f"Provider '{name}' returned an incomplete response.",
                provider=name,
            )
        status: int = start["status"]
        detail = provider_message(b"".join(self.buffer))
        if detail:
            # What the provider said stays in the log (it may name the operator's account or
            # key); the client gets the status, the provider and the request id.
            logger.warning(
                "akgate routing: provider %r answered HTTP %d for request %s: %r",
                name,
                status,
                self.ctx.request_id,
                detail,
            )
        return upstream_fault(
            status, start.get("headers", ()), provider=name, request_id=self.ctx.request_id
        )

    async def end_midstream(self, timed_out: bool) -> None:
        """End an answer that reached the client but not its end. It is never retried (bytes
        are out): a stream ends with an explicit error event, then the body is closed."""
        tail = b""
        if self.rewriter is not None:
            if timed_out:
                tail = self.rewriter.abort(
                    "upstream_timeout", "The request deadline was exceeded mid-stream."
                )
            else:
                tail = self.rewriter.abort("upstream_error", "The provider failed mid-stream.")
        await self._to_client({"type": "http.response.body", "body": tail, "more_body": False})


def _content_type(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """``find_header(headers, b"content-type") or b""`` (only a 12-byte name is lowered)."""
    for name, value in headers:
        if len(name) == 12 and name.lower() == b"content-type":
            return value or b""
    return b""


def _without_content_length(
    headers: Iterable[tuple[bytes, bytes]], *, copy: bool = False
) -> list[tuple[bytes, bytes]]:
    """``headers`` without ``Content-Length`` (any case): the list itself when it has none and
    ``copy`` is false. (Only a 14-byte name is lowered: lowering every name cost ~0.1 µs a
    header, and a provider's answer has a dozen.)"""
    if not copy and type(headers) is list:
        for name, _ in headers:
            if len(name) == 14 and name.lower() == b"content-length":
                break
        else:
            return headers
    return [(k, v) for k, v in headers if len(k) != 14 or k.lower() != b"content-length"]


_REWRITERS: Final[
    Mapping[str, type[ChatStreamRewriter | ResponsesStreamRewriter | MessagesStreamRewriter]]
] = {
    "chat_completions": ChatStreamRewriter,
    "responses": ResponsesStreamRewriter,
    "messages": MessagesStreamRewriter,
}


def attempt_outcome(attempt: Attempt, cancel: CallScope | None) -> str:
    if attempt.disconnected:
        return "client_disconnected"
    if cancel is not None and cancel.cancelled_caught:
        return "timeout"
    if not attempt.committed:
        return "failed"
    return "failed_midstream" if attempt.exc is not None else "ok"
