"""``ResponsesAdapter``: serve ``POST /v1/responses`` from an app that serves chat completions.

The adapter reads the Responses request, calls the inner app in-process with the translated chat
request (a child context, a copied scope at ``/v1/chat/completions``), holds the response until
the inner app has answered, and translates the result back: a JSON body whole, a stream event by
event as it arrives.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic_core import from_json

from akgate._applog import log_app_exception
from akgate._asgi import (
    CR,
    DEFAULT_MAX_BODY_SIZE,
    ClientDisconnected,
    dumps,
    find_header,
    read_request_json,
    replay_receive,
    response_cap,
    route_path,
    scope_with_body,
    send_json,
)
from akgate._endpoints import gateway_scope, send_refused
from akgate._options import check_body_size, check_path
from akgate._types import ASGIApp, Message, Receive, Scope, Send
from akgate._watch import Release, run_watched
from akgate.context import SCOPE_KEY, RequestContext, request_context
from akgate.errors import ERROR_CODES, GatewayError, send_envelope, send_error
from akgate.sse import SSEEventTooLarge, SSEParser

from ._answer import ANSWER_SLOT, AnswerSlot
from ._options import AdapterOptions, HostedTools, ReasoningEvents, ReasoningInput
from ._request import to_chat_request
from ._response import chat_to_response
from ._stream import StreamTranslator, UpstreamStreamError

if TYPE_CHECKING:
    from akgate.routing._cancel import CallScope
    from akgate.store import ResponseStore, StatefulResponses

__all__ = ["ResponsesAdapter"]

logger = logging.getLogger("akgate.adapter")

#: Server extensions the inner app must not use on the translated path: the adapter needs bytes.
_HIDDEN_EXTENSIONS: Final = (
    "http.response.pathsend",
    "http.response.zerocopysend",
    "http.response.trailers",
)
#: Inner response headers that describe the inner body, not the translated one.
_BODY_HEADERS: Final = frozenset(
    {
        b"content-type",
        b"content-length",
        b"transfer-encoding",
        b"content-encoding",
        b"etag",
        b"content-md5",
        b"x-request-id",
    }
)
#: A JSON inner answer is held whole to be translated: a larger one is answered 502.
MAX_INNER_RESPONSE_SIZE: Final = 32 * 1024 * 1024
_SSE_HEADERS: Final = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
)


class ResponsesAdapter:
    """Answer ``POST /v1/responses`` by translating to and from the inner app's chat endpoint.

    Options (keyword-only):

    * ``passthrough``: forward ``/v1/responses`` untouched (the inner app serves it natively).
    * ``reasoning_events``: ``"summary"`` (default, widest client support) or
      ``"reasoning_text"`` (raw chain-of-thought events); never both.
    * ``reasoning_input``: what happens to ``reasoning`` input items: ``"drop"`` (default, with a
      ``routing_metadata`` warning), or carried on the next assistant message as
      ``"reasoning_content"`` (DeepSeek) or ``"reasoning"`` (vLLM).
    * ``max_tokens_field``: ``"max_completion_tokens"`` (default) or ``"max_tokens"``.
    * ``developer_role``: ``"developer"`` (default, passed through) or ``"system"``.
    * ``send_done``: append ``data: [DONE]`` after the terminal event (Open Responses mode).
    * ``hosted_tools``: hosted tools (``web_search``, ``mcp``, ...) and their items, which a chat
      app cannot run: ``"strict"`` (default) answers 400 ``hosted_tool_not_supported``;
      ``"lenient"`` drops them with one ``routing_metadata.warnings`` entry each.
    * ``inline_files``: pass ``input_file`` parts sent inline (``file_data``) to the chat app as
      chat ``file`` parts (files in a ``function_call_output`` follow the tool results as a
      user message). Default ``False``: 400 ``operation_not_allowed``. ``file_id`` (a Files
      API) and ``file_url`` (chat has no URL form) are refused either way.
    * ``path`` / ``chat_path``: the served path and the inner chat path (below ``root_path``).
    * ``max_body_size``: request body cap in bytes (413 above it).
    * ``store``: a :class:`~akgate.store.ResponseStore` or its URL: serve ``store``,
      ``previous_response_id``, item references, ``GET``/``DELETE``/``cancel`` and background
      runs through :class:`~akgate.store.StatefulResponses` (default ``None``: stateless,
      those answer 400 ``operation_not_allowed``).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        passthrough: bool = False,
        reasoning_events: ReasoningEvents = "summary",
        reasoning_input: ReasoningInput = "drop",
        max_tokens_field: Literal["max_completion_tokens", "max_tokens"] = "max_completion_tokens",
        developer_role: Literal["developer", "system"] = "developer",
        send_done: bool = False,
        hosted_tools: HostedTools = "strict",
        inline_files: bool = False,
        path: str = "/v1/responses",
        chat_path: str = "/v1/chat/completions",
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        store: ResponseStore | str | None = None,
    ) -> None:
        self.options = AdapterOptions(
            reasoning_events=reasoning_events,
            reasoning_input=reasoning_input,
            max_tokens_field=max_tokens_field,
            developer_role=developer_role,
            send_done=send_done,
            hosted_tools=hosted_tools,
            inline_files=inline_files,
        )
        self.app = app
        self.passthrough = passthrough
        self.path = check_path("path", path)
        self.chat_path = check_path("chat_path", chat_path)
        self.max_body_size = check_body_size(max_body_size)
        self.stateful: StatefulResponses | None = None
        if store is not None:
            from akgate.store import StatefulResponses

            # The stateful layer turns each request into a stateless one for _translate.
            self.stateful = StatefulResponses(
                self._translate, store=store, path=path, max_body_size=max_body_size
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.stateful is not None:
            await self.stateful(scope, receive, send)
        else:
            await self._translate(scope, receive, send)

    async def aclose(self) -> None:
        """Stop background runs and close a store this adapter opened from a URL."""
        if self.stateful is not None:
            await self.stateful.aclose()

    async def _translate(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.passthrough:
            await self.app(scope, receive, send)
            return
        # The gateway's path rule, also when this layer is used alone (outermost).
        scope, resolution = gateway_scope(scope)
        if resolution is not None and resolution.refused:
            await send_refused(scope, send, resolution)
            return
        if route_path(scope) != self.path:
            await self.app(scope, receive, send)
            return
        scope, send, ctx = request_context(scope, send)
        if scope.get("method", "GET") != "POST":
            await send_error(
                send,
                GatewayError("method_not_allowed", f"Use POST on {self.path}."),
                headers=[(b"allow", b"POST")],
            )
            return
        try:
            payload = await read_request_json(scope, receive, ctx, max_size=self.max_body_size)
            chat = to_chat_request(payload, self.options, ctx)
        except GatewayError as err:
            await send_error(send, err)
            return
        except ClientDisconnected:
            return
        if ctx.endpoint is None:
            ctx.endpoint = "responses"
        bridge = _Bridge(self, scope, ctx, payload, chat, send)
        await bridge.run(ctx.raw_receive or receive)


def _inner_scope(scope: Scope, body: bytes, path: str, child: RequestContext) -> Scope:
    inner = scope_with_body(scope, body, path=path)
    inner["method"] = "POST"
    inner[SCOPE_KEY] = child
    # JSON in, and no compression out: the adapter must read the inner body.
    inner["headers"] = [
        (k, v) for k, v in inner["headers"] if k not in (b"content-type", b"accept-encoding")
    ] + [(b"content-type", b"application/json")]
    extensions = scope.get("extensions")
    if extensions and any(name in extensions for name in _HIDDEN_EXTENSIONS):
        inner["extensions"] = {k: v for k, v in extensions.items() if k not in _HIDDEN_EXTENSIONS}
    return inner


def _forwarded_headers(headers: Any) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k.lower() not in _BODY_HEADERS]


def _synthetic_chunk(chat: dict[str, Any]) -> dict[str, Any]:
    """One chunk that carries a whole chat completion (an inner app that ignored ``stream``)."""
    choices = chat.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    choice = choice if isinstance(choice, dict) else {}
    message = choice.get("message")
    delta = dict(message) if isinstance(message, dict) else {}
    calls = delta.get("tool_calls")
    if isinstance(calls, list):
        delta["tool_calls"] = [
            {**call, "index": i} for i, call in enumerate(calls) if isinstance(call, dict)
        ]
    return {
        **chat,
        "choices": [
            {
                "index": 0,
                "delta": delta,
                "logprobs": choice.get("logprobs"),
                "finish_reason": choice.get("finish_reason") or "stop",
            }
        ],
    }


class _Bridge:
    """One request's translation: the inner ``send`` and what to answer when the app returns."""

    def __init__(
        self,
        adapter: ResponsesAdapter,
        scope: Scope,
        ctx: RequestContext,
        payload: dict[str, Any],
        chat: dict[str, Any],
        send: Send,
    ) -> None:
        self.adapter = adapter
        self.scope = scope
        self.ctx = ctx
        self.payload = payload
        self.chat = chat
        self.send = send
        self.stream = bool(chat.get("stream"))
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.mode: Literal["head", "json", "sse", "done"] = "head"
        self.chunks: list[bytes] = []
        self.size = 0
        #: The inner JSON answer cap (set with the inner request, see ``response_cap``).
        self.cap = MAX_INNER_RESPONSE_SIZE
        self.parser: SSEParser | None = None
        self.translator: StreamTranslator | None = None
        #: True once our own http.response.start went out.
        self.started = False
        #: Set when the client leaves or the inner response is complete: the inner app's
        #: receive() then answers http.disconnect, as a server's would (see ``run``).
        self.inner_released = Release()
        #: True once the inner app sent its last body message.
        self.inner_complete = False
        #: Every inner chunk so far ended with a blank line: the SSE parser holds nothing.
        self.framed = True

    async def run(self, raw_receive: Receive) -> None:
        body = dumps(self.chat)
        self.cap = response_cap(MAX_INNER_RESPONSE_SIZE, len(body))
        child = self.ctx.child(self.chat, body, "chat_completions")
        scope = _inner_scope(self.scope, body, self.adapter.chat_path, child)

        async def after_body() -> Message:
            # The watcher owns the real receive; the inner app learns of a disconnect from it,
            # or, as from a server, once its response is complete (so that its own disconnect
            # watcher returns instead of waiting to be cancelled).
            await self.inner_released.wait()
            return {"type": "http.disconnect"}

        async def watch(inner: CallScope) -> None:
            try:
                while (await raw_receive())["type"] != "http.disconnect":
                    pass
            except Exception:  # a broken receive is a gone client too
                pass
            self.inner_released.set()
            if not self.inner_complete:
                inner.cancel()  # client gone mid-answer: cancel the inner call
            # Otherwise the inner app is only cleaning up (Django's handler collects its
            # disconnect listener then): cancelling it would orphan that task's exception.

        async def call() -> None:
            try:
                await self.adapter.app(scope, replay_receive(body, after_body), self.inner_send)
            except Exception as exc:
                log_app_exception(
                    logger, f"the inner app ({self.adapter.chat_path})", exc, self.ctx.request_id
                )
                await self.inner_failed(exc)
            else:
                await self.inner_returned()

        await run_watched(call, watch)

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
                self.inner_complete = True
                self.inner_released.set()
            return
        if kind == "http.response.start":
            if self.mode != "head":
                return  # a second start is the inner app's protocol error; keep ours sane
            self.status = int(message["status"])
            self.headers = list(message.get("headers", ()))
            content_type = (find_header(self.headers, b"content-type") or b"").lower()
            if 200 <= self.status < 300 and content_type.startswith(b"text/event-stream"):
                self.mode = "sse"
                self.parser = SSEParser()
                self.translator = StreamTranslator(self.payload, self.adapter.options)
            else:
                self.mode = "json"
            return
        if kind == "http.response.pathsend" and self.mode != "done":
            # Only a file path: nothing to translate (the extension was hidden from the app).
            await self.error(
                GatewayError(
                    "upstream_error", "The inner app answered with a file, not a chat completion."
                )
            )
            return
        if kind == "http.response.trailers":
            return  # never declared on the translated response
        await self.send(message)  # http.response.debug and anything unknown

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
        if self.stream:
            # The inner app ignored stream: true; the client still gets the events it asked for.
            self.translator = StreamTranslator(self.payload, self.adapter.options)
            await self.commit()
            translator = self.translator
            await self.end(
                translator.open(chat.get("model"))
                + translator.translate(_synthetic_chunk(chat))
                + translator.finish()
            )
            return
        response = chat_to_response(
            chat, self.payload, reasoning_events=self.adapter.options.reasoning_events
        )
        self.mode = "done"
        self.started = True
        await self.send_response(response)

    async def send_response(self, response: dict[str, Any]) -> None:
        """The final Response object as the JSON answer, left with its bytes in the request's
        answer slot (patched first for a stateful layer's turn: see ``_answer``)."""
        slot = self.ctx.state.get(ANSWER_SLOT)
        if slot is None:
            slot = self.ctx.state[ANSWER_SLOT] = AnswerSlot()
        elif slot.patch is not None:
            slot.patch(response)
        body = dumps(response)
        slot.fill(response, body)
        try:
            await send_json(self.send, 200, body, headers=_forwarded_headers(self.headers))
        finally:
            # The layers outside took what they needed while the body went out; held here, the
            # object would live on with the request's context, as work for the garbage collector.
            slot.clear()

    async def inner_error_response(self, body: bytes, status: int | None = None) -> None:
        """A non-2xx inner answer: its envelope passes through, anything else is wrapped."""
        status = status or self.status
        if not 400 <= status < 600:
            status = 502
        try:
            envelope = _parse_object(body)
        except ValueError:
            envelope = None
        if envelope is not None and isinstance(envelope.get("error"), dict):
            error = envelope["error"]
            if isinstance(error.get("message"), str):
                self.mode = "done"
                self.started = True
                body = dumps({"error": error})
                await send_envelope(self.send, status, body, self.retry_after())
                return
        await self.error(
            GatewayError(
                "upstream_error",
                f"The inner app answered HTTP {self.status}.",
                status=status,
            )
        )

    def retry_after(self) -> list[tuple[bytes, bytes]]:
        return [(k, v) for k, v in self.headers if k.lower() == b"retry-after"]

    async def error(self, err: GatewayError) -> None:
        self.mode = "done"
        self.started = True
        await send_error(self.send, err)

    # --- SSE ------------------------------------------------------------------------------

    async def sse_body(self, chunk: bytes, more_body: bool) -> None:
        parser, translator = self.parser, self.translator
        assert parser is not None
        assert translator is not None
        if self.framed and self.started and more_body:
            data = _lone_data_event(chunk, parser.max_event_size)
            if data is not None:
                # The hot path: one ``data:`` line and its blank line on a committed stream,
                # with nothing held by the parser: its payload is read without the parser.
                try:
                    parsed = translator.parse(data)
                except UpstreamStreamError:
                    pass  # not JSON (or not UTF-8): the parser's reading decides, as always
                else:
                    events_out = translator.translate(parsed)
                    if translator.finished:
                        await self.end(events_out)
                    elif events_out and self.stream:
                        await self.send(
                            {"type": "http.response.body", "body": events_out, "more_body": True}
                        )
                    return
        if chunk:
            self.framed = chunk.endswith(b"\n\n")
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
                data = translator.fail("upstream_error", str(exc))
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
                out.append(translator.fail("upstream_error", str(exc)))
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
            await self.end(data)  # terminal event out: the body ends here
        elif data and self.stream:
            await self.send({"type": "http.response.body", "body": data, "more_body": True})

    async def too_large(self, message: str) -> None:
        """End the response: the inner app sent more than the adapter holds."""
        self.inner_released.set()  # the inner app's receive() now says the client left
        self.chunks = []
        if not self.started:
            await self.error(GatewayError("upstream_error", message))
            return
        translator = self.translator
        assert translator is not None
        await self.end(translator.fail("upstream_error", message))

    async def first_chunk(self, chunk: dict[str, Any] | None, out: list[bytes]) -> bool:
        """Decide on the first inner chunk: an error is still a real HTTP status.

        A client must never read a failed request as a 200 with an error inside it.
        """
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
        out.append(translator.open(chunk.get("model")))
        out.append(translator.translate(chunk))
        return True

    async def commit(self) -> None:
        """Send our stream headers (the first events follow in the same batch's body)."""
        self.started = True
        self.mode = "sse"
        await self.send(
            {
                "type": "http.response.start",
                "status": self.status if 200 <= self.status < 300 else 200,
                "headers": [
                    *_SSE_HEADERS,
                    *_forwarded_headers(
                        (k, v)
                        for k, v in self.headers
                        if k.lower() not in (b"cache-control", b"x-accel-buffering")
                    ),
                ],
            }
        )

    async def end(self, data: bytes) -> None:
        self.mode = "done"
        if self.stream:
            await self.send({"type": "http.response.body", "body": data, "more_body": False})
            return
        # A non-stream request over an inner stream: answer the final object as JSON.
        translator = self.translator
        assert translator is not None
        assert translator.response is not None
        response = translator.response
        if response["status"] == "failed":
            # The same code as the stream would have carried (one code per fault).
            error = response["error"]
            self.started = True
            await send_error(
                self.send,
                GatewayError(error["code"], error["message"], error["param"], type_=error["type"]),
            )
            return
        await self.send_response(response)

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

    async def inner_failed(self, exc: Exception) -> None:
        if self.mode == "done":
            return
        if not self.started:
            await self.error(GatewayError("upstream_error", "The inner app failed."))
            return
        translator = self.translator
        assert translator is not None
        # Logged above and not re-raised: the client gets error + response.failed, and an outer
        # layer (routing) still sees a complete, well-formed response.
        await self.end(translator.fail("upstream_error", "The upstream failed mid-stream."))


def _lone_data_event(chunk: bytes, max_size: int) -> bytes | None:
    """The payload of ``chunk`` when it is exactly one ``data: ...`` line and a blank line
    (how chat streams send each chunk), else None."""
    if (
        chunk.startswith(b"data: ")
        and chunk.endswith(b"\n\n")
        and chunk.find(b"\n") == len(chunk) - 2
        and CR not in chunk
        and len(chunk) <= max_size
    ):
        return chunk[6:-2]
    return None


def _error_status(error: Any) -> int:
    """The HTTP status for an upstream error object (its code or type), else 502."""
    if isinstance(error, dict):
        for key in ("code", "type"):
            value = error.get(key)
            if isinstance(value, str) and value in ERROR_CODES:
                status = ERROR_CODES[value][0]
                if 400 <= status < 600 and status != 499:
                    return status
        if error.get("type") == "rate_limit_error":
            return 429
    return 502


def _parse_object(body: bytes) -> dict[str, Any]:
    """``body`` as a JSON object (ValueError otherwise)."""
    value = from_json(body) if body else None
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _incomplete_answer(mode: str, started: bool) -> GatewayError | None:
    """The error for an inner app that returned before its answer was complete, or None when
    its stream was under way (the translator finishes it)."""
    if mode == "head":
        return GatewayError("upstream_error", "The inner app returned without sending a response.")
    if mode == "json":
        return GatewayError(
            "upstream_error", "The inner app returned before its response body was complete."
        )
    if not started:
        return GatewayError(
            "upstream_error", "The inner app's stream ended before its first chunk."
        )
    return None


def _chat_completion(body: bytes) -> dict[str, Any] | None:
    """The inner app's 2xx JSON body as a chat completion, or None when it is an error envelope
    (answered as the endpoint's error); GatewayError when it is neither."""
    try:
        chat = _parse_object(body)
    except ValueError:
        raise GatewayError(
            "upstream_error", "The inner app answered with a body that is not JSON."
        ) from None
    if isinstance(chat.get("error"), dict):
        return None
    if not isinstance(chat.get("choices"), list):
        raise GatewayError(
            "upstream_error", "The inner app answered with something that is not a chat completion."
        )
    return chat
