"""``MessagesAdapter``: serve Anthropic's ``POST /v1/messages`` from an app that serves chat.

Same shape as :class:`akgate.adapter.ResponsesAdapter`: the adapter reads the Messages request,
calls the inner app in-process with the translated chat request (a child context, a copied scope
at ``/v1/chat/completions``), holds the response start until the inner app has answered, and
translates the result back: a JSON body whole, a stream event by event as it arrives, with a
``ping`` whenever the inner app stays silent for ``ping_interval`` seconds. Every error is in
Anthropic's envelope. ``POST /v1/messages/count_tokens`` is answered here too.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Final, Literal

import anyio

from akgate._applog import log_app_exception
from akgate._asgi import (
    DEFAULT_MAX_BODY_SIZE,
    ClientDisconnected,
    dumps,
    find_header,
    read_request_json,
    replay_receive,
    response_cap,
    route_path,
    send_json,
)
from akgate._options import check_body_size, check_path
from akgate._types import ASGIApp, Message, Receive, Scope, Send
from akgate._watch import Release, run_watched
from akgate.adapter._middleware import (
    _chat_completion,
    _error_status,
    _forwarded_headers,
    _incomplete_answer,
    _inner_scope,
    _parse_object,
    _synthetic_chunk,
)
from akgate.context import RequestContext, request_context
from akgate.errors import GatewayError, anthropic_error_body, send_envelope, send_error
from akgate.sse import SSEEventTooLarge, SSEParser

from ._count import estimate_tokens
from ._options import CountTokens, HostedTools, MessagesOptions, ReasoningInput, SystemMessages
from ._request import MessagesRequest, to_chat_request
from ._response import chat_to_message
from ._stream import PING, MessagesStreamTranslator, UpstreamStreamError

if TYPE_CHECKING:
    from akgate.routing._cancel import CallScope

__all__ = ["MessagesAdapter"]

logger = logging.getLogger("akgate.messages")

#: A JSON inner answer is held whole to be translated: a larger one is answered 502.
MAX_INNER_RESPONSE_SIZE: Final = 32 * 1024 * 1024
_SSE_HEADERS: Final = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


class MessagesAdapter:
    """Answer ``POST /v1/messages`` (and ``/count_tokens``) through the inner app's chat endpoint.

    Options (keyword-only):

    * ``passthrough``: forward the Messages paths untouched (the inner app speaks Messages).
    * ``hosted_tools``: ``"strict"`` (default: server tools, MCP servers and containers are a
      400) or ``"lenient"`` (dropped with a ``routing_metadata`` warning).
    * ``reasoning_input``: replayed ``thinking`` blocks are dropped (``"drop"``, default) or sent
      on the assistant message as ``"reasoning_content"`` or ``"reasoning"``.
    * ``max_tokens_field``: ``"max_completion_tokens"`` (default) or ``"max_tokens"``.
    * ``system_messages``: ``role: "system"`` messages are merged into the system prompt
      (``"merge"``, default) or kept in place (``"keep"``).
    * ``effort_budgets``: ``thinking.budget_tokens`` bounds of low/medium effort.
    * ``ping_interval``: seconds of inner silence before a ``ping`` event (``None``: never).
    * ``count_tokens``: ``"estimate"`` (default, local) or ``"provider"`` (the inner app's
      ``prompt_tokens`` for the translated request).
    * ``path`` / ``count_tokens_path`` / ``chat_path``: served and inner paths.
    * ``max_body_size``: request body cap in bytes (413 above it).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        passthrough: bool = False,
        hosted_tools: HostedTools = "strict",
        reasoning_input: ReasoningInput = "drop",
        max_tokens_field: Literal["max_completion_tokens", "max_tokens"] = "max_completion_tokens",
        system_messages: SystemMessages = "merge",
        effort_budgets: tuple[int, int] = (4096, 16384),
        ping_interval: float | None = 10.0,
        count_tokens: CountTokens = "estimate",
        path: str = "/v1/messages",
        count_tokens_path: str = "/v1/messages/count_tokens",
        chat_path: str = "/v1/chat/completions",
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        low, medium = effort_budgets
        self.options = MessagesOptions(
            hosted_tools=hosted_tools,
            reasoning_input=reasoning_input,
            max_tokens_field=max_tokens_field,
            system_messages=system_messages,
            effort_budgets=(low, medium),
            ping_interval=ping_interval,
            count_tokens=count_tokens,
        )
        self.app = app
        self.passthrough = passthrough
        self.path = check_path("path", path)
        self.count_tokens_path = check_path("count_tokens_path", count_tokens_path)
        self.chat_path = check_path("chat_path", chat_path)
        self.max_body_size = check_body_size(max_body_size)

    def __repr__(self) -> str:
        return f"MessagesAdapter({self.app!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.passthrough:
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        if path not in (self.path, self.count_tokens_path):
            path = path.rstrip("/")
            if path not in (self.path, self.count_tokens_path):
                await self.app(scope, receive, send)
                return
        scope, send, ctx = request_context(scope, send)
        ctx.error_format = "anthropic"
        if scope.get("method", "GET") != "POST":
            await send_error(
                send,
                GatewayError("method_not_allowed", f"Use POST on {path}."),
                headers=[(b"allow", b"POST")],
                ctx=ctx,
            )
            return
        counting = path == self.count_tokens_path
        try:
            payload = await read_request_json(scope, receive, ctx, max_size=self.max_body_size)
            chat, request = to_chat_request(payload, self.options, ctx, count_only=counting)
        except GatewayError as err:
            await send_error(send, err, ctx=ctx)
            return
        except ClientDisconnected:
            return
        if ctx.endpoint is None:
            ctx.endpoint = "messages"
        if counting and self.options.count_tokens == "estimate":
            await send_json(send, 200, {"input_tokens": estimate_tokens(chat)})
            return
        if counting:
            # The provider's own count: the translated request with a one-token answer.
            chat[self.options.max_tokens_field] = 1
        bridge = _Bridge(self, scope, ctx, request, chat, send, counting=counting)
        await bridge.run(ctx.raw_receive or receive)


class _Bridge:
    """One request's translation: the inner ``send`` and what to answer when the app returns."""

    def __init__(
        self,
        adapter: MessagesAdapter,
        scope: Scope,
        ctx: RequestContext,
        request: MessagesRequest,
        chat: dict[str, Any],
        send: Send,
        *,
        counting: bool,
    ) -> None:
        self.adapter = adapter
        self.scope = scope
        self.ctx = ctx
        self.request = request
        self.chat = chat
        self.send = send
        self.counting = counting
        self.stream = request.stream
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.mode: Literal["head", "json", "sse", "done"] = "head"
        self.chunks: list[bytes] = []
        self.size = 0
        #: The inner JSON answer cap (set with the inner request, see ``response_cap``).
        self.cap = MAX_INNER_RESPONSE_SIZE
        self.parser: SSEParser | None = None
        self.translator: MessagesStreamTranslator | None = None
        #: True once our own http.response.start went out.
        self.started = False
        #: For idle pings: when our last body message went out, and whether one is in flight.
        self.last_sent = 0.0
        self.sending = False
        #: Set once the stream is committed or the request is over; ``ended`` once it is over.
        self.wake = anyio.Event()
        self.ended = anyio.Event()
        self.inner_released = Release()

    def new_translator(self) -> MessagesStreamTranslator:
        return MessagesStreamTranslator(self.request, input_estimate=estimate_tokens(self.chat))

    async def run(self, raw_receive: Receive) -> None:
        body = dumps(self.chat)
        self.cap = response_cap(MAX_INNER_RESPONSE_SIZE, len(body))
        child = self.ctx.child(self.chat, body, "chat_completions")
        scope = _inner_scope(self.scope, body, self.adapter.chat_path, child)

        async def after_body() -> Message:
            await self.inner_released.wait()
            return {"type": "http.disconnect"}

        watching = False

        async def watch(inner: CallScope) -> None:
            nonlocal watching
            watching = True
            try:
                while (await raw_receive())["type"] != "http.disconnect":
                    pass
            except Exception:  # a broken receive is a gone client too
                pass
            finally:
                watching = False
            self.inner_released.set()
            if self.mode != "done":
                inner.cancel()  # client gone mid-response: cancel the inner call

        async def call_inner() -> None:
            try:
                await self.adapter.app(scope, replay_receive(body, after_body), self.inner_send)
            except Exception as exc:
                log_app_exception(
                    logger, f"the inner app ({self.adapter.chat_path})", exc, self.ctx.request_id
                )
                await self.inner_failed()
            else:
                await self.inner_returned()
            self.ended.set()
            self.wake.set()

        async def call() -> None:
            interval = self.adapter.options.ping_interval
            if self.stream and interval is not None:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self.pinger, interval)
                    await call_inner()
                    await anyio.lowlevel.checkpoint()  # let the pinger see it and return
                    tg.cancel_scope.cancel()
            else:
                await call_inner()
            if watching:
                # Let the watcher read the client's disconnect and return: a task cancelled
                # at an await leaves a reference cycle per request.
                await anyio.lowlevel.checkpoint()

        # A bare watcher task, not a task group (~40 µs per request; akgate/_watch.py).
        await run_watched(call, watch)

    async def pinger(self, interval: float) -> None:
        """``ping`` events while the inner app is silent (long reasoning, slow tools).

        It returns, rather than being cancelled, once the response is over (``ended``): a
        cancelled task leaves reference cycles behind every request.
        """
        await self.wake.wait()  # the stream was committed, or the request is over
        while self.mode == "sse" and not self.ended.is_set():
            with anyio.move_on_after(max(0.0, self.last_sent + interval - time.monotonic())):
                await self.ended.wait()
            if self.ended.is_set():
                return
            if not self.sending and time.monotonic() - self.last_sent >= interval:
                await self.body(PING)

    async def body(self, data: bytes, more_body: bool = True) -> None:
        self.sending = True
        try:
            await self.send({"type": "http.response.body", "body": data, "more_body": more_body})
        finally:
            self.sending = False
            self.last_sent = time.monotonic()

    # --- the inner app's send -------------------------------------------------------------

    async def inner_send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            more_body = message.get("more_body", False)
            if self.mode == "sse":
                await self.sse_body(message.get("body", b""), more_body)
            elif self.mode == "json":
                chunk = message.get("body", b"")
                if chunk:
                    self.size += len(chunk)
                    if self.size > self.cap:
                        await self.too_large(
                            f"The inner app's response is larger than {self.cap} bytes."
                        )
                        return
                    self.chunks.append(chunk)
                if not more_body:
                    await self.json_complete()
            if not more_body:
                self.inner_released.set()
            return
        if kind == "http.response.start":
            if self.mode != "head":
                return
            self.status = int(message["status"])
            self.headers = list(message.get("headers", ()))
            content_type = (find_header(self.headers, b"content-type") or b"").lower()
            if 200 <= self.status < 300 and content_type.startswith(b"text/event-stream"):
                self.mode = "sse"
                self.parser = SSEParser()
                self.translator = self.new_translator()
            else:
                self.mode = "json"
            return
        if kind == "http.response.pathsend" and self.mode != "done":
            await self.error(
                GatewayError(
                    "upstream_error", "The inner app answered with a file, not a chat completion."
                )
            )
            return
        if kind == "http.response.trailers":
            return
        await self.send(message)

    # --- JSON -----------------------------------------------------------------------------

    async def json_complete(self) -> None:
        body = b"".join(self.chunks)
        self.chunks = []
        if not 200 <= self.status < 300:
            await self.inner_error_response(body)
            return
        try:
            chat = _chat_completion(body)
        except GatewayError as exc:
            await self.error(exc)
            return
        if chat is None:
            await self.inner_error_response(body, status=502)
            return
        if self.counting:
            usage = chat.get("usage")
            tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
            if not isinstance(tokens, int):
                tokens = estimate_tokens(self.chat)  # the provider did not count
            self.mode = "done"
            self.started = True
            await send_json(self.send, 200, {"input_tokens": tokens})
            return
        if self.stream:
            # The inner app ignored stream: true; the client still gets the events it asked for.
            self.translator = translator = self.new_translator()
            await self.commit()
            try:
                data = translator.translate(_synthetic_chunk(chat)) + translator.finish()
            except UpstreamStreamError as exc:
                data = translator.fail(502, str(exc))
            await self.end(translator.open() + data)
            return
        try:
            response = chat_to_message(chat, self.request)
        except GatewayError as err:
            await self.error(err)
            return
        self.mode = "done"
        self.started = True
        await send_json(self.send, 200, response, headers=self.json_headers())

    def json_headers(self) -> list[tuple[bytes, bytes]]:
        """The inner app's headers that still apply, and Anthropic's ``request-id``."""
        return [
            *_forwarded_headers(self.headers),
            (b"request-id", self.ctx.request_id.encode("latin-1")),
        ]

    async def inner_error_response(self, body: bytes, status: int | None = None) -> None:
        """A non-2xx inner answer in Anthropic's envelope, with its status and message."""
        status = status or self.status
        if not 400 <= status < 600:
            status = 502
        message = f"The inner app answered HTTP {self.status}."
        try:
            envelope = _parse_object(body)
        except ValueError:
            envelope = None
        error = envelope.get("error") if envelope is not None else None
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            message = error["message"]
            if status == 502:
                status = _error_status(error)
        self.mode = "done"
        self.started = True
        data = anthropic_error_body(status, message, request_id=self.ctx.request_id)
        headers = [
            (b"request-id", self.ctx.request_id.encode("latin-1")),
            *[(k, v) for k, v in self.headers if k.lower() == b"retry-after"],
        ]
        await send_envelope(self.send, status, data, headers)

    async def error(self, err: GatewayError) -> None:
        self.mode = "done"
        self.started = True
        await send_error(self.send, err, ctx=self.ctx)

    # --- SSE ------------------------------------------------------------------------------

    async def sse_body(self, chunk: bytes, more_body: bool) -> None:
        parser, translator = self.parser, self.translator
        assert parser is not None
        assert translator is not None
        try:
            events = parser.feed(chunk) if chunk else ()
        except SSEEventTooLarge:
            await self.too_large(
                f"The inner app sent a stream event larger than {parser.max_event_size} bytes."
            )
            return
        data = b""
        if len(events) == 1 and self.started and more_body:
            # The hot path: one inner event per message on a committed stream.
            try:
                data = translator.translate(translator.parse(events[0].data))
            except UpstreamStreamError as exc:
                data = translator.fail(502, str(exc))
        elif events or not more_body:
            out: list[bytes] = []
            try:
                for event in events:
                    parsed = translator.parse(event.data)
                    if not self.started:
                        if not await self.first_chunk(parsed, out):
                            return
                        continue
                    out.append(translator.translate(parsed))
            except UpstreamStreamError as exc:
                if not self.started:
                    await self.error(GatewayError("upstream_error", str(exc)))
                    return
                out.append(translator.fail(502, str(exc)))
            if not more_body:
                parser.finish()
                if not self.started:
                    await self.error(
                        GatewayError(
                            "upstream_error", "The inner app's stream ended before its first chunk."
                        )
                    )
                    return
                out.append(translator.finish())
                await self.end(b"".join(out))
                return
            data = b"".join(out)
        if translator.finished:
            await self.end(data)
        elif data and self.stream:
            await self.body(data)

    async def too_large(self, message: str) -> None:
        self.inner_released.set()
        self.chunks = []
        if not self.started:
            await self.error(GatewayError("upstream_error", message))
            return
        translator = self.translator
        assert translator is not None
        await self.end(translator.fail(502, message))

    async def first_chunk(self, chunk: dict[str, Any] | None, out: list[bytes]) -> bool:
        """Decide on the first inner chunk: an error is still a real HTTP status."""
        translator = self.translator
        assert translator is not None
        if chunk is None:
            await self.error(
                GatewayError(
                    "upstream_error", "The inner app's stream ended before its first chunk."
                )
            )
            return False
        error = chunk.get("error")
        if error:
            self.status = 502
            await self.inner_error_response(
                dumps({"error": error}) if isinstance(error, dict) else b"",
                status=_error_status(error),
            )
            return False
        if self.stream:
            await self.commit()
        else:
            self.started = True  # aggregating: the JSON answer goes out at the end
        out.append(translator.open())
        out.append(translator.translate(chunk))
        return True

    async def commit(self) -> None:
        """Send our stream headers (the first events follow in the same batch's body)."""
        self.started = True
        self.mode = "sse"
        await self.send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    *_SSE_HEADERS,
                    (b"request-id", self.ctx.request_id.encode("latin-1")),
                    *_forwarded_headers(
                        (k, v)
                        for k, v in self.headers
                        if k.lower() not in (b"cache-control", b"x-accel-buffering")
                    ),
                ],
            }
        )
        self.last_sent = time.monotonic()
        self.wake.set()

    async def end(self, data: bytes) -> None:
        self.mode = "done"
        if self.stream:
            await self.body(data, more_body=False)
            return
        translator = self.translator
        assert translator is not None
        if translator.error is not None or translator.message is None:
            error = translator.error or {"message": "The upstream failed."}
            self.started = True
            await send_error(
                self.send, GatewayError("upstream_error", error["message"]), ctx=self.ctx
            )
            return
        await send_json(self.send, 200, translator.message, headers=self.json_headers())

    # --- the inner app returned or raised -------------------------------------------------

    async def inner_returned(self) -> None:
        if self.mode == "done":
            return
        incomplete = _incomplete_answer(self.mode, self.started)
        if incomplete is not None:
            await self.error(incomplete)
            return
        translator = self.translator
        assert translator is not None
        await self.end(translator.finish())

    async def inner_failed(self) -> None:
        if self.mode == "done":
            return
        if not self.started:
            await self.error(GatewayError("upstream_error", "The inner app failed."))
            return
        translator = self.translator
        assert translator is not None
        await self.end(translator.fail(502, "The upstream failed mid-stream."))
