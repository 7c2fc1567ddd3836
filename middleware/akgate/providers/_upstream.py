"""``UpstreamProvider``: forward the gateway's endpoints to an OpenAI-compatible server.

The HTTP client is akgate's own HTTP/1.1 client for direct upstreams (``_upstream_h1.py``, with
httptools from ``akgate[server]``), aiohttp for proxied ones, else httpx
(``providers/_upstream_http.py`` says why and how they differ).

Only endpoints of the endpoint table (``akgate._endpoints``) marked for upstream forwarding
(chat completions, responses, models) leave, plus the ``opt_in`` ones named in ``forward=``
(e.g. ``embeddings``), with their methods only; anything else is a 404 (a wrong method 405) and
never reaches the upstream. The canonical request path below ``/v1`` is appended to ``base_url``
(``/v1/chat/completions`` -> ``{base_url}/chat/completions``), with the provider's own API key.
SSE responses are forwarded chunk by chunk as they arrive; other responses (small JSON bodies) are
read whole first, so that a failure while reading them still becomes a clean error envelope.

Failures, all as Auriko envelopes (``provider`` set to the provider's name):

=====================================  ==========================================================
connection refused, DNS, protocol      502 ``upstream_error``
timeout before the response            504 ``upstream_timeout`` (connect, first byte, total)
no data for ``idle_timeout`` mid-SSE   ``upstream_timeout`` error frame
upstream 4xx/5xx                       same status; the upstream's envelope when it sent one,
                                       else wrapped (``upstream_error`` for 5xx)
failure or truncation mid-SSE          ``data: {"error": ...}`` then ``data: [DONE]``
client disconnect                      the upstream request is cancelled
=====================================  ==========================================================
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final
from urllib.parse import quote, urlsplit

import anyio
import anyio.lowlevel
import httpx
from pydantic_core import from_json

from akgate._asgi import ClientDisconnected, dumps, read_body, response_cap
from akgate._endpoints import (
    ENDPOINTS,
    GATEWAY_PREFIX,
    EndpointSpec,
    Resolution,
    gateway_scope,
    not_allowed,
)
from akgate._query import scrub_query
from akgate._types import Message, Receive, Scope, Send
from akgate.context import RequestContext, request_context
from akgate.errors import ERROR_CODES, GatewayError, anthropic_error_type, send_error
from akgate.providers._stream_end import MARKERS, StreamEnd
from akgate.providers._upstream_http import (
    ClientOptions,
    UpstreamClient,
    UpstreamError,
    UpstreamRequest,
    UpstreamResponse,
    UpstreamTimeout,
    env_proxy,
)
from akgate.routing._cancel import CallScope, open_scope
from akgate.sse import SSEEventTooLarge

__all__ = ["UpstreamProvider"]

logger = logging.getLogger("akgate.providers")

#: Request headers never forwarded: hop-by-hop, recomputed, or the caller's own credentials.
_DROP_REQUEST: Final = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "accept-encoding",
        "authorization",
        "x-api-key",
        "api-key",
        "cookie",
    }
)
#: Response headers never forwarded: hop-by-hop, set by our server, or meant for us only.
_DROP_RESPONSE: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "server",
        "date",
        "set-cookie",
        "alt-svc",
    }
)
#: The two sets as header names arrive (ASGI and both clients give them lower-cased, as bytes).
_DROP_REQUEST_NAMES: Final = frozenset(name.encode("latin-1") for name in _DROP_REQUEST)
_DROP_RESPONSE_NAMES: Final = frozenset(name.encode("latin-1") for name in _DROP_RESPONSE)
#: Characters kept as they are in a forwarded path (RFC 3986 pchar and '/'; not '?', '#', '%').
_PATH_SAFE: Final = "/:@!$&'()*+,;=-._~"
#: Upstream statuses whose error envelope is the client's to read (its own request's fault).
_CLIENT_ERRORS: Final = frozenset({400, 404, 409, 413, 415, 422})
_MAX_ERROR_BODY: Final = 1024 * 1024
_TERMINAL_EVENTS: Final = frozenset(
    {"response.completed", "response.incomplete", "response.failed"}
)


class UpstreamProvider:
    """An ASGI app that forwards ``/v1/...`` to ``base_url`` (e.g. ``https://api.openai.com/v1``).

    ``api_key`` (or the env var named by ``api_key_env``) is sent as ``Authorization: Bearer``;
    ``headers`` are added to every upstream request. Timeouts are in seconds: ``connect_timeout``
    (TCP and TLS), ``first_byte_timeout`` (request sent -> response headers),
    ``idle_timeout`` (between two body chunks), ``total_timeout`` (the whole exchange, stream
    included; ``None``: no limit), ``pool_timeout`` (waiting for a free connection) and
    ``write_timeout`` (httpx only). ``read_timeout`` is the default of both ``first_byte_timeout``
    and ``idle_timeout``. ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` are honoured (loopback
    upstreams are always reached directly); certificates are verified; no cookie is ever kept.
    ``client``: an ``httpx.AsyncClient`` to send with instead (e.g. ``http2=True``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        api_key_env: str | None = None,
        headers: Mapping[str, str] | None = None,
        name: str | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 120.0,
        write_timeout: float = 30.0,
        pool_timeout: float = 10.0,
        total_timeout: float | None = None,
        first_byte_timeout: float | None = None,
        idle_timeout: float | None = None,
        max_connections: int = 100,
        max_keepalive_connections: int = 20,
        keepalive_expiry: float = 30.0,
        max_request_size: int = 32 * 1024 * 1024,
        max_response_size: int = 32 * 1024 * 1024,
        client: httpx.AsyncClient | None = None,
        forward: Iterable[str] = (),
        require_identity: bool = False,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if api_key is not None and api_key_env is not None:
            raise ValueError("pass api_key or api_key_env, not both")
        if api_key_env is not None:
            api_key = os.environ.get(api_key_env)
            if not api_key:
                raise ValueError(f"environment variable {api_key_env} is not set")
        for option, value in (
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
            ("write_timeout", write_timeout),
            ("pool_timeout", pool_timeout),
            ("total_timeout", total_timeout),
            ("first_byte_timeout", first_byte_timeout),
            ("idle_timeout", idle_timeout),
        ):
            if value is not None and value <= 0:
                raise ValueError(f"{option} must be > 0")
        opt_in = {spec.name for spec in ENDPOINTS if spec.upstream == "opt_in"}
        self.forward = frozenset([forward] if isinstance(forward, str) else forward)
        if not self.forward <= opt_in:
            raise ValueError(
                f"forward names endpoints that cannot be enabled: {sorted(self.forward - opt_in)} "
                f"(choose from {sorted(opt_in)})"
            )
        self.require_identity = require_identity
        self.base_url = base_url.rstrip("/")
        # Not the host by default: the name appears in client-facing errors.
        self.name = name or "upstream"
        self.total_timeout = total_timeout
        self.first_byte_timeout = first_byte_timeout or read_timeout
        self.idle_timeout = idle_timeout or read_timeout
        self.max_request_size = max_request_size
        self.max_response_size = max_response_size
        extra = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
        ]
        if api_key:
            extra.append((b"authorization", b"Bearer " + api_key.encode("latin-1")))
        # Identity encoding: SSE must reach us uncompressed to be forwarded (and amended) as is.
        extra.append((b"accept-encoding", b"identity"))
        self._extra_headers = extra
        self._extra_names = {name for name, _ in extra}
        #: Scrubbed from upstream error bodies, in case an upstream echoes the key it was sent.
        self._secret = api_key.encode("latin-1") if api_key else None
        options = ClientOptions(
            connect_timeout=connect_timeout,
            write_timeout=write_timeout,
            pool_timeout=pool_timeout,
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
            keepalive_expiry=keepalive_expiry,
            proxy=env_proxy(self.base_url),
        )
        self.client = UpstreamClient(options, client)

    def __repr__(self) -> str:
        # Never show the key, nor credentials written into the URL (user:password@, a query).
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        if parts.port is not None:
            host += f":{parts.port}"
        shown = f"{parts.scheme}://{host}{parts.path}"
        return f"UpstreamProvider({shown!r}, name={self.name!r})"

    async def aclose(self) -> None:
        """Close the pooled connections (only of a client this provider created)."""
        await self.client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        scope, send, ctx = request_context(scope, send)
        scope, resolution = gateway_scope(scope)
        method: str = scope.get("method", "GET")
        try:
            spec = self._endpoint(resolution, method, ctx)
            assert resolution is not None
            body = await self._request_body(scope, receive, ctx) if method == "POST" else b""
        except GatewayError as err:
            await send_error(send, err)
            return
        except ClientDisconnected:
            return
        # The canonical path, quoted: a decoded '?' or '#' stays part of the path.
        url = self.base_url + _quoted(resolution.path[len(GATEWAY_PREFIX) :])
        scrub_query(scope)  # also when no outer akgate layer did (this app used alone)
        query = scope.get("query_string", b"")
        if query:
            url += "?" + query.decode("latin-1")
        headers = [
            (k, v)
            for k, v in scope.get("headers", ())
            if k not in _DROP_REQUEST_NAMES and k not in self._extra_names
        ]
        headers.extend(self._extra_headers)
        request = UpstreamRequest(method, url, headers, body)
        sse_kind = spec.kind if spec.kind in ("responses", "messages") else "chat"
        exchange = _Exchange(self, request, send, sse_kind, ctx.request_id)
        await exchange.run(receive)

    def _endpoint(
        self, resolution: Resolution | None, method: str, ctx: RequestContext
    ) -> EndpointSpec:
        """The endpoint this request may be forwarded as, or the error that keeps it here."""
        spec = None
        if resolution is not None and not resolution.refused:
            spec = resolution.spec
        if spec is None or not (
            spec.upstream == "served" or (spec.upstream == "opt_in" and spec.name in self.forward)
        ):
            # The path is not echoed: it is the client's, and may be anything.
            raise GatewayError("resource_not_found", f"No such endpoint for {method}.")
        if method not in spec.methods:
            raise not_allowed(spec)
        if self.require_identity and ctx.identity is None:
            # Defence in depth: behind APIKeyAuth every forwarded request has an identity.
            raise GatewayError(
                "invalid_api_key",
                "Invalid API key provided.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return spec

    async def _request_body(self, scope: Scope, receive: Receive, ctx: RequestContext) -> bytes:
        # The body meant for this app: a rewritten one on the (child) context, else read it here.
        if ctx.body is not None:
            return ctx.body
        if ctx.payload is not None:
            return dumps(ctx.payload)
        ctx.body = await read_body(scope, receive, max_size=self.max_request_size)
        ctx.raw_receive = receive
        return ctx.body

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def error(self, code: str, message: str, *, status: int | None = None) -> GatewayError:
        return GatewayError(code, message, status=status, provider=self.name)


class _Exchange:
    """One forwarded request: sends the upstream's answer, or an envelope or error frame."""

    def __init__(
        self,
        provider: UpstreamProvider,
        request: UpstreamRequest,
        send: Send,
        sse_kind: str,
        request_id: str,
    ) -> None:
        self.provider = provider
        self.request_id = request_id
        self.request = request
        self.send = send
        self.sse_kind = sse_kind
        self.started = False  # our http.response.start went out
        self.streaming = False  # we are forwarding an SSE body
        self.finished = False  # our final body message went out
        self.terminated = False  # the SSE stream reached its terminal event
        self.errored = False  # the SSE stream carried an error frame
        self.tail = b""
        self.disconnected = False
        self.first_byte = False  # the upstream's response headers arrived
        self.scope: CallScope | None = None  # the exchange; its deadline is the next limit
        self.total_deadline = math.inf
        self.deadline = math.inf  # the scope's deadline, as last set
        #: anyio's clock; under asyncio the loop's own (the same time, without a look-up).
        self.clock: Callable[[], float] = anyio.current_time

    async def run(self, receive: Receive) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # another event loop (trio): the watcher runs in a task group
            async with anyio.create_task_group() as group:
                group.start_soon(self._watch_disconnect, receive, anyio.lowlevel.checkpoint)
                try:
                    unexpected = await self._exchange()
                finally:
                    group.cancel_scope.cancel()
        else:
            # asyncio: a bare task, cancelled at the end. An anyio task group, its task and its
            # cancellation cost ~40 µs of CPU per request (docs/benchmarks.md).
            self.clock = loop.time
            watcher = loop.create_task(self._watch_disconnect(receive, _yield))
            try:
                unexpected = await self._exchange()
            finally:
                watcher.cancel()
        if unexpected is not None:
            try:
                raise unexpected
            finally:
                del unexpected  # no frame <-> traceback cycle

    async def _exchange(self) -> Exception | None:
        """Forward, answer a failure; a bug's exception is returned (after a clean answer)."""
        failure: GatewayError | None = None
        unexpected: Exception | None = None
        now = self.clock()
        if self.provider.total_timeout is not None:
            self.total_deadline = now + self.provider.total_timeout
        self.deadline = min(self.total_deadline, now + self.provider.first_byte_timeout)
        # Under asyncio a native scope over this task (routing's): an anyio.CancelScope costs
        # ~7 µs per request in bookkeeping that an exchange never cancelled does not need.
        total = open_scope(self.deadline)
        with total:
            self.scope = total
            if self.disconnected:  # the watcher saw the client go before the scope existed
                total.cancel()
            try:
                await self._forward()
            except UpstreamTimeout as exc:
                failure = self._timeout(str(exc))
            except UpstreamError as exc:
                # The text is a type name, or one of our own bounds: never the upstream's.
                what = str(exc)
                self._log_failure(what)
                failure = self.provider.error(
                    "upstream_error",
                    f"Provider '{self.provider.name}' failed ({what}); request {self.request_id}.",
                )
            except OSError:
                self.disconnected = True  # ASGI 2.4: send after the client left
            except Exception as exc:
                # A bug, not an upstream failure: answer cleanly, then let the server see it.
                unexpected = exc
                failure = self.provider.error(
                    "internal_error", "The gateway failed while forwarding the request."
                )
        self.scope = None
        if self.disconnected:
            return unexpected
        if total.cancelled_caught and self.clock() < self.total_deadline:
            failure = self._stall()
        elif total.cancelled_caught:
            failure = self.provider.error(
                "upstream_timeout",
                f"Provider '{self.provider.name}' did not finish within "
                f"{self.provider.total_timeout} s; request {self.request_id}.",
            )
        if failure is not None:
            try:
                await self._fail(failure)
            except OSError:
                pass
        return unexpected

    async def _watch_disconnect(
        self, receive: Receive, pause: Callable[[], Awaitable[None]]
    ) -> None:
        """Cancel the exchange when the client disconnects (returns, or is cancelled, else)."""
        try:
            while True:
                message: Message = await receive()
                if message["type"] == "http.disconnect":
                    self.disconnected = True
                    # Cancels the upstream read: its connection is closed, so the upstream sees
                    # it go.
                    if self.scope is not None:
                        self.scope.cancel()
                    return
                # A receive that never blocks (an endless body replay) must not starve the
                # exchange.
                await pause()
        except Exception:
            return  # a server whose receive fails after the body: nothing more to watch

    def _progress(self) -> None:
        """Data arrived: move the exchange's deadline to the idle limit from now.

        Moved on only when that gains more than a tenth of the idle limit (moved in at once),
        so a fast stream does not reschedule a timer per chunk, nor a quick answer when the
        first-byte and idle limits are the same; a stall is therefore cut between 0.9x and 1x
        ``idle_timeout`` after the last data.
        """
        target = min(self.total_deadline, self.clock() + self.provider.idle_timeout)
        current = self.deadline
        if self.scope is not None and (
            target < current or target - current > self.provider.idle_timeout / 10
        ):
            self.deadline = self.scope.deadline = target

    def _timeout(self, detail: str) -> GatewayError:
        name = self.provider.name
        self._log_failure(detail)
        if self.streaming:
            message = f"Provider '{name}' stalled mid-stream ({detail}); request {self.request_id}."
        else:
            message = f"Provider '{name}' timed out ({detail}); request {self.request_id}."
        return self.provider.error("upstream_timeout", message)

    def _stall(self) -> GatewayError:
        if self.first_byte:
            return self._timeout(f"no data for {self.provider.idle_timeout} s")
        return self._timeout(f"no response within {self.provider.first_byte_timeout} s")

    def _log_failure(self, detail: str) -> None:
        # The upstream's address and what it said go to the log; the client gets the provider
        # name and the request id. Exception texts are not logged (a URL may hold credentials).
        logger.warning("%r failed for request %s: %s", self.provider, self.request_id, detail)

    async def _forward(self) -> None:
        response = await self.provider.client.send(self.request)
        self.first_byte = True
        self._progress()
        try:
            content_type = response.header(b"content-type") or ""
            if response.status >= 400:
                await self._forward_error(response)
            elif content_type.startswith("text/event-stream"):
                await self._forward_stream(response)
            else:
                await self._forward_whole(response)
        finally:
            await response.aclose()

    def _headers(
        self, response: UpstreamResponse, *, keep_encoding: bool
    ) -> list[tuple[bytes, bytes]]:
        headers = []
        for name, value in response.headers:
            if name in _DROP_RESPONSE_NAMES:
                continue
            if name == b"content-encoding" and not keep_encoding:
                continue
            if name == b"x-request-id":
                # Our own X-Request-ID names this request; keep the upstream's under its own name.
                name = b"x-upstream-request-id"
            headers.append((name, value))
        return headers

    async def _read_capped(self, response: UpstreamResponse, limit: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.chunks():
            self._progress()
            size += len(chunk)
            if size > limit:
                raise UpstreamError(f"response larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _forward_whole(self, response: UpstreamResponse) -> None:
        # Widened by what the answer may echo of the request (a request under the caps never
        # becomes a 502 because its answer repeats it).
        limit = response_cap(self.provider.max_response_size, len(self.request.body))
        body = await self._read_capped(response, limit)
        headers = self._headers(response, keep_encoding=False)
        headers.append((b"content-length", str(len(body)).encode("latin-1")))
        await self._start(response.status, headers)
        await self._body(body, final=True)

    async def _forward_error(self, response: UpstreamResponse) -> None:
        status = response.status
        body = await self._read_capped(response, _MAX_ERROR_BODY)
        secret = self.provider._secret
        if secret is not None and secret in body:
            body = body.replace(secret, b"[redacted]")
        if status in _CLIENT_ERRORS and _is_envelope(body):
            # The client's own request error (bad parameter, unknown model): the upstream's
            # message tells it what to fix.
            headers = self._headers(response, keep_encoding=False)
            headers.append((b"content-length", str(len(body)).encode("latin-1")))
            await self._start(status, headers)
            await self._body(body, final=True)
            return
        code = _code_for_status(status)
        # Anything else (the operator's key refused, rate limits naming the operator's account,
        # server errors) stays in the log: the client gets the status, provider and request id.
        snippet = body[:500].decode("utf-8", "replace").strip()
        self._log_failure(f"HTTP {status}: {snippet!r}")
        message = (
            f"Provider '{self.provider.name}' answered HTTP {status}; request {self.request_id}."
        )
        retry_after = response.header(b"retry-after")
        err = GatewayError(
            code,
            message,
            status=status,
            provider=self.provider.name,
            headers={"Retry-After": retry_after} if retry_after else None,
        )
        self.started = self.finished = True
        await send_error(self.send, err)

    async def _forward_stream(self, response: UpstreamResponse) -> None:
        await self._start(response.status, self._headers(response, keep_encoding=False))
        self.streaming = True
        # Only the events that may end the stream are parsed (see _stream_end.py).
        parser = StreamEnd(MARKERS[self.sse_kind])
        async for chunk in response.chunks():  # decoded, should the upstream compress anyway
            self._progress()
            if not chunk:
                continue
            try:
                events = parser.feed(chunk)
            except SSEEventTooLarge as exc:  # an event that never ends: cut the stream
                raise UpstreamError(str(exc)) from None
            for event in events:
                self._observe(event.event, event.data)
            await self._body(chunk)
            self.tail = chunk[-2:]
        if not self.terminated:
            # The upstream closed cleanly but early: say so instead of a silent truncation.
            if self.errored:
                await self._body(b"data: [DONE]\n\n", final=True)
                return
            await self._fail(
                self.provider.error(
                    "upstream_error",
                    f"Provider '{self.provider.name}' ended the stream before it finished; "
                    f"request {self.request_id}.",
                )
            )
            return
        await self._body(b"", final=True)

    def _observe(self, event: str | None, data: str) -> None:
        if data == "[DONE]":
            self.terminated = True
        elif self.sse_kind == "responses":
            kind = event or _event_type(data)
            if kind in _TERMINAL_EVENTS or kind == "error":
                self.terminated = True
        elif self.sse_kind == "messages":  # Anthropic: no [DONE]; message_stop or error ends it
            kind = event or _event_type(data)
            if kind == "message_stop" or kind == "error":
                self.terminated = True
        elif data.startswith('{"error"'):
            self.errored = True

    async def _fail(self, err: GatewayError) -> None:
        if not self.started:
            self.started = self.finished = True
            await send_error(self.send, err)
            return
        if self.finished:
            return
        if self.streaming:
            # Close a partial event first, so the error frame parses on its own.
            prefix = b"" if self.tail in (b"", b"\n\n") else b"\n\n"
            if self.sse_kind == "responses":
                frame = {**err.payload(), "type": "error"}  # the flat Responses form
                await self._body(prefix + b"event: error\ndata: " + dumps(frame) + b"\n\n")
                await self._body(b"", final=True)
            elif self.sse_kind == "messages":  # Anthropic's error event, nothing after it
                error = {"type": anthropic_error_type(err.status), "message": err.message}
                frame = {"type": "error", "error": error}
                await self._body(prefix + b"event: error\ndata: " + dumps(frame) + b"\n\n")
                await self._body(b"", final=True)
            else:
                await self._body(prefix + b"data: " + dumps({"error": err.payload()}) + b"\n\n")
                await self._body(b"data: [DONE]\n\n", final=True)
            return
        await self._body(b"", final=True)

    async def _start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.started = True
        await self.send({"type": "http.response.start", "status": status, "headers": headers})

    async def _body(self, body: bytes, *, final: bool = False) -> None:
        if final:
            self.finished = True
        await self.send({"type": "http.response.body", "body": body, "more_body": not final})


@functools.lru_cache(maxsize=256)
def _quoted(path: str) -> str:
    """``path`` percent-quoted for the upstream URL (cached: a few endpoints take every call)."""
    return quote(path, safe=_PATH_SAFE)


async def _yield() -> None:
    await asyncio.sleep(0)


def _event_type(data: str) -> str:
    """The ``type`` of a Responses event whose JSON starts with it (as every server sends it)."""
    if data.startswith('{"type":"'):
        return data[9:].partition('"')[0]
    return ""


def _is_envelope(body: bytes) -> bool:
    try:
        value: Any = from_json(body)
    except ValueError:
        return False
    error = value.get("error") if isinstance(value, dict) else None
    return isinstance(error, dict) and isinstance(error.get("message"), str)


def _code_for_status(status: int) -> str:
    if status >= 500:
        return "upstream_error"
    for code, (code_status, _) in ERROR_CODES.items():
        if code_status == status:
            return code
    return "invalid_request"
