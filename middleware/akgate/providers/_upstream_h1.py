"""A small HTTP/1.1 client for ``UpstreamProvider``: asyncio protocols, httptools' parser, and a
LIFO keep-alive pool for the one upstream a provider talks to.

Used for direct (unproxied) connections on asyncio when httptools is installed (it comes with
``akgate[server]``, as uvicorn's parser). A proxied upstream goes through aiohttp or httpx
(``_upstream_http.py``), which speak CONNECT. The choice and its measurements are in
``docs/design.md``: per proxied request this client costs about half of aiohttp's CPU, which
builds a request object, a payload, a writer, a timer and a response object for each exchange.

What it keeps of the other backends' contract: connect and pool-wait timeouts (first byte, idle
and total are the provider's), ``max_connections``, ``keepalive_expiry``, verified TLS, no
cookies, bounded buffering (reading pauses while a body chunk waits), and cancellation: a body
not read to its end closes its connection, so the upstream sees the request go.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from akgate.providers._upstream_http import (
    ClientOptions,
    UpstreamError,
    UpstreamRequest,
    UpstreamResponse,
    UpstreamTimeout,
)

__all__ = ["H1Pool", "available"]

#: Bytes of response body held before the socket stops being read (until the caller takes it).
_HIGH_WATER = 256 * 1024


def available() -> bool:
    """Whether httptools (this client's parser) is installed."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return False
    return True


class _Connection(asyncio.Protocol):
    """One keep-alive connection; it parses the answers of the requests sent on it."""

    def __init__(self, pool: H1Pool) -> None:
        import httptools

        self.pool = pool
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head: asyncio.Future[None] | None = None
        self.body: deque[bytes] = deque()
        self.buffered = 0
        self.waiter: asyncio.Future[None] | None = None
        self.complete = False
        self.keep_alive = False
        self.error: str | None = None
        self.delimited = False  # content-length or chunked: the end is not the connection's
        self.paused = False

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.head is None or self.complete:  # bytes nothing asked for: a broken connection
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except Exception as exc:  # httptools' parser errors: a malformed answer
            self._fail(type(exc).__name__)
            self.close()

    def eof_received(self) -> bool | None:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            self.pool._lost(self)
        if self.head is not None and not self.complete:
            if self.status and not self.delimited:
                self.on_message_complete()  # a body that ends with the connection
            else:
                self._fail("ServerDisconnectedError")

    # -- httptools callbacks ---------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-length" or name == b"transfer-encoding":
            self.delimited = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if self.status < 200:  # an interim answer (100 Continue): the real one follows
            self.status = 0
            self.headers = []
            return
        head = self.head
        if head is not None and not head.done():
            head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.status == 0:
            return  # the end of an interim answer
        self.complete = True
        # Asked now: once this callback returns, the parser is ready for the next answer.
        self.keep_alive = self.parser.should_keep_alive()
        self._wake()

    # -- the request's side ----------------------------------------------------------------
    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: str) -> None:
        self.error = error
        head = self.head
        if head is not None and not head.done():
            head.set_exception(UpstreamError(error))
        self._wake()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if not self.closed:
            self.closed = True
            self.pool._lost(self)

    async def exchange(self, head: bytes, body: bytes) -> _H1Response:
        if self.closed or self.transport is None:
            raise UpstreamError("ServerDisconnectedError")
        self.head = self.pool.loop.create_future()
        if body:
            self.transport.writelines((head, body))
        else:
            self.transport.write(head)
        await self.head
        return _H1Response(self)

    async def read(self) -> bytes | None:
        """The next body bytes; ``None`` at the end."""
        while not self.body:
            if self.complete:
                return None
            if self.error is not None:
                raise UpstreamError(self.error)
            self.waiter = self.pool.loop.create_future()
            await self.waiter
        data = self.body.popleft() if len(self.body) == 1 else b"".join(self.body)
        if len(self.body) > 1:
            self.body.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data


class _H1Response(UpstreamResponse):
    __slots__ = ("_connection", "_decoder", "_released")

    def __init__(self, connection: _Connection) -> None:
        super().__init__(connection.status, connection.headers)
        self._connection = connection
        self._released = False
        self._decoder: Any = None
        encoding = self.header(b"content-encoding")
        if encoding is not None:
            encoding = encoding.strip().lower()
            # Asked for identity; an upstream that compresses anyway is decoded, as aiohttp does.
            if encoding in ("gzip", "x-gzip"):
                self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
            elif encoding == "deflate":
                self._decoder = _Deflate()
            elif encoding not in ("", "identity"):
                raise UpstreamError(f"unsupported content-encoding {encoding[:20]!r}")

    async def chunks(self) -> AsyncIterator[bytes]:
        connection = self._connection
        decoder = self._decoder
        while True:
            data = await connection.read()
            if data is None:
                if decoder is not None:
                    tail = decoder.flush()
                    if tail:
                        yield tail
                return
            if decoder is not None:
                try:
                    data = decoder.decompress(data)
                except zlib.error:
                    raise UpstreamError("ContentEncodingError") from None
            yield data

    async def aclose(self) -> None:
        if self._released:
            return
        self._released = True
        connection = self._connection
        # Fully read: back to the pool; otherwise closed, so that the upstream sees it go.
        if connection.complete and connection.keep_alive and not connection.closed:
            connection._reset()
            connection.pool._release(connection)
        else:
            connection.close()


class _Deflate:
    """``deflate`` as servers send it: zlib-wrapped, or (wrongly, but often) raw."""

    def __init__(self) -> None:
        self._inner: Any = None

    def decompress(self, data: bytes) -> bytes:
        if self._inner is None:
            raw = not data or (data[0] & 0x0F) != 8  # a zlib header starts with method 8
            self._inner = zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
        return bytes(self._inner.decompress(data))

    def flush(self) -> bytes:
        return bytes(self._inner.flush()) if self._inner is not None else b""


class H1Pool:
    """Keep-alive connections to the origins one provider sends to (LIFO: the warmest first)."""

    def __init__(self, options: ClientOptions, loop: asyncio.AbstractEventLoop) -> None:
        self.options = options
        self.loop = loop
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._origin: dict[_Connection, tuple[str, str, int]] = {}
        self._open = 0  # connections open or being opened
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._ssl: ssl.SSLContext | None = None
        self.closed = False

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        scheme, _, rest = request.url.partition("://")
        authority, slash, target = rest.partition("/")
        target = slash + target if slash else "/"
        origin = _origin(scheme, authority)
        head = _request_head(request, authority, target)
        connection = await self._acquire(origin)
        try:
            return await connection.exchange(head, request.body)
        except BaseException:
            connection.close()
            raise

    async def _acquire(self, origin: tuple[str, str, int]) -> _Connection:
        idle = self._idle.get(origin)
        if idle:
            expiry = self.loop.time() - self.options.keepalive_expiry
            while idle:
                connection = idle.pop()
                if not connection.closed and connection.idle_since > expiry:
                    return connection
                connection.close()
        while self._open >= self.options.max_connections:
            waiter = self.loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, self.options.pool_timeout)
            except asyncio.TimeoutError:
                raise UpstreamTimeout("PoolTimeout") from None
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken, then cancelled: the turn goes to the next one
                raise
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            idle = self._idle.get(origin)
            while idle:
                connection = idle.pop()
                if not connection.closed:
                    return connection
        self._open += 1
        try:
            connection = await self._connect(origin)
            if connection.closed:  # lost before it was ours to count
                raise UpstreamError("ServerDisconnectedError")
        except BaseException:
            self._open -= 1
            self._wake_one()
            raise
        self._origin[connection] = origin
        return connection

    async def _connect(self, origin: tuple[str, str, int]) -> _Connection:
        scheme, host, port = origin
        context = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()  # certificates verified
            context = self._ssl
        connection = _Connection(self)
        try:
            await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: connection,
                    host,
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                ),
                self.options.connect_timeout,
            )
        except asyncio.TimeoutError:
            raise UpstreamTimeout("ConnectTimeout") from None
        except OSError as exc:  # refused, DNS, TLS (ssl.SSLError is an OSError)
            raise UpstreamError(type(exc).__name__) from None
        return connection

    def _release(self, connection: _Connection) -> None:
        if self.closed:
            connection.close()
            return
        connection.idle_since = self.loop.time()
        self._idle.setdefault(self._origin[connection], []).append(connection)
        self._wake_one()

    def _lost(self, connection: _Connection) -> None:
        if self._origin.pop(connection, None) is not None:
            self._open -= 1
            self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        self.closed = True
        self._idle.clear()
        for connection in list(self._origin):
            connection.close()
        # A transport closes its socket on the loop's next turn: let it, so that the upstream
        # sees every connection go before this returns.
        await asyncio.sleep(0)


def _origin(scheme: str, authority: str) -> tuple[str, str, int]:
    host, port = authority.rpartition("@")[2], ""
    if host.startswith("["):  # an IPv6 literal
        bracket = host.index("]")
        host, port = host[1:bracket], host[bracket + 2 :]
    elif ":" in host:
        host, _, port = host.partition(":")
    return scheme, host, int(port) if port else (443 if scheme == "https" else 80)


def _request_head(request: UpstreamRequest, authority: str, target: str) -> bytes:
    lines = [
        f"{request.method} {target} HTTP/1.1\r\nhost: {authority.rpartition('@')[2]}\r\n".encode(
            "latin-1"
        )
    ]
    for name, value in request.headers:
        lines.append(b"%s: %s\r\n" % (name, value))
    if request.body or request.method == "POST":
        lines.append(b"content-length: %d\r\n" % len(request.body))
    lines.append(b"\r\n")
    head = b"".join(lines)
    # One line per header and nothing else: a CR or LF inside a name or value (a configured
    # header, say) would smuggle another header or request.
    expected = len(lines) + 1  # the first piece holds two lines
    if head.count(b"\n") != expected or head.count(b"\r") != expected:
        raise UpstreamError("InvalidHeader")
    return head
