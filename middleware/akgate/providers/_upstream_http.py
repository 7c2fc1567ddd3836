"""The HTTP clients under ``UpstreamProvider``: akgate's own, aiohttp, httpx.

All offer the same small surface (send one request, iterate the body, close), raise the same two
exceptions, never keep cookies, and leave first-byte and idle-between-chunks timeouts to the
caller (``_Exchange`` keeps them as its cancel scope's deadline). A direct upstream on asyncio
goes through akgate's own HTTP/1.1 client (``_upstream_h1.py``, when httptools is installed):
it costs about half of aiohttp's CPU per proxied request, which costs ~5x less than httpx (the
table in ``docs/design.md``). aiohttp serves proxied upstreams (CONNECT) and URLs with
credentials; httpx a caller-supplied ``httpx.AsyncClient`` (HTTP/2, custom transports), loops
other than asyncio, and installs without aiohttp.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import urllib.request
from collections.abc import AsyncIterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx

__all__ = [
    "ClientOptions",
    "UpstreamClient",
    "UpstreamError",
    "UpstreamRequest",
    "UpstreamResponse",
    "UpstreamTimeout",
    "env_proxy",
    "no_cookies",
]


class UpstreamTimeout(Exception):
    """Connecting (or waiting for a pooled connection) took too long; the text is a type name."""


class UpstreamError(Exception):
    """Connection refused, DNS, TLS, protocol error, or a body cut short; the text is a type
    name or one of the provider's own bounds, never what the upstream sent."""


class UpstreamRequest(NamedTuple):
    method: str
    url: str
    headers: list[tuple[bytes, bytes]]
    body: bytes


class ClientOptions(NamedTuple):
    connect_timeout: float
    write_timeout: float
    pool_timeout: float
    max_connections: int
    max_keepalive_connections: int
    keepalive_expiry: float
    proxy: str | None


class UpstreamResponse:
    """An upstream answer whose body is still to be read."""

    __slots__ = ("headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.status = status
        #: Raw header pairs, names lower-cased, in the upstream's order.
        self.headers = headers

    def header(self, name: bytes) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None

    def chunks(self) -> AsyncIterator[bytes]:  # pragma: no cover - abstract
        raise NotImplementedError

    async def aclose(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class UpstreamClient:
    """Sends requests on a pooled client; chooses its backend on first use, in the running loop."""

    def __init__(self, options: ClientOptions, client: httpx.AsyncClient | None) -> None:
        self.options = options
        self.httpx_client = client
        self._owns_httpx = client is None
        self._session: Any = None  # aiohttp.ClientSession, bound to the loop that created it
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._h1: Any = None  # _upstream_h1.H1Pool, bound to the loop that created it
        self._h1_unusable = False  # decided once: no httptools, a proxy, or URL credentials
        #: Set by aclose() of a client this provider owns (a caller's client stays open).
        self.is_closed = False

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        if self._owns_httpx:
            h1 = self._h1_pool(request.url)
            if h1 is not None:
                response: UpstreamResponse = await h1.send(request)
                return response
            session = self._aiohttp_session()
            if session is not None:
                return await _aiohttp_send(session, request, self.options.proxy)
        return await _httpx_send(self._httpx(), request)

    async def aclose(self) -> None:
        h1, self._h1 = self._h1, None
        if h1 is not None:
            await h1.aclose()
        session, self._session = self._session, None
        if session is not None:
            await session.close()
        if self._owns_httpx:
            self.is_closed = True
            if self.httpx_client is not None:
                await self.httpx_client.aclose()

    def _h1_pool(self, url: str) -> Any:
        """akgate's own HTTP/1.1 pool, for direct connections on asyncio (else ``None``)."""
        loop = _running_loop()
        h1 = self._h1
        if h1 is not None and h1.loop is loop:
            return h1
        if loop is None or self._h1_unusable:
            return None
        from akgate.providers import _upstream_h1

        # CONNECT through a proxy, and credentials in the URL: aiohttp or httpx speak them.
        credentials = "@" in url.partition("://")[2].partition("/")[0]
        if self.options.proxy is not None or credentials or not _upstream_h1.available():
            self._h1_unusable = True
            return None
        self._h1 = _upstream_h1.H1Pool(self.options, loop)
        return self._h1

    def _aiohttp_session(self) -> Any:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # trio and other loops: httpx (over anyio) works everywhere
            return None
        if self._session is not None and self._session_loop is loop:
            return self._session
        try:
            import aiohttp
        except ImportError:
            return None
        options = self.options
        self._session_loop = loop
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=options.max_connections,
                keepalive_timeout=options.keepalive_expiry,
                ssl=ssl.create_default_context(),  # certificates verified, as by httpx
            ),
            # Waiting for a pool slot plus connecting; first byte, idle and total are the
            # caller's (one watchdog per exchange, for both backends).
            timeout=aiohttp.ClientTimeout(
                connect=options.pool_timeout + options.connect_timeout,
                sock_connect=options.connect_timeout,
            ),
            # One upstream session serves every client: a Set-Cookie from the upstream must
            # never ride on another client's request.
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=True,
            trust_env=False,  # the proxy comes from env_proxy(); never ~/.netrc credentials
        )
        return self._session

    def _httpx(self) -> httpx.AsyncClient:
        if self.httpx_client is None:
            options = self.options
            self.httpx_client = httpx.AsyncClient(
                timeout=httpx.Timeout(
                    connect=options.connect_timeout,
                    read=None,
                    write=options.write_timeout,
                    pool=options.pool_timeout,
                ),
                limits=httpx.Limits(
                    max_connections=options.max_connections,
                    max_keepalive_connections=options.max_keepalive_connections,
                    keepalive_expiry=options.keepalive_expiry,
                ),
                cookies=no_cookies(),
                proxy=options.proxy,
                follow_redirects=False,
                trust_env=False,
            )
        return self.httpx_client


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # trio and other loops: httpx (over anyio) works everywhere
        return None


def no_cookies() -> httpx.Cookies:
    """A cookie jar that refuses every cookie (no domain is allowed)."""
    return httpx.Cookies(CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])))


def env_proxy(url: str) -> str | None:
    """The proxy the environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``) names for
    ``url``; loopback upstreams are always reached directly."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if not proxy or bypass(host, proxies):
        return None
    return proxy


# --- aiohttp ---------------------------------------------------------------------------------


class _AiohttpResponse(UpstreamResponse):
    __slots__ = ("_response",)

    def __init__(self, response: Any) -> None:
        super().__init__(
            response.status, [(key.lower(), value) for key, value in response.raw_headers]
        )
        self._response = response

    async def chunks(self) -> AsyncIterator[bytes]:
        import aiohttp

        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except aiohttp.ClientError as exc:
            raise UpstreamError(_describe(exc)) from None

    async def aclose(self) -> None:
        # Fully read: the connection goes back to the pool; otherwise it is closed, so that the
        # upstream sees the request go (a cancelled stream stops generating).
        if self._response.content.is_eof():
            self._response.release()
        else:
            self._response.close()


async def _aiohttp_send(
    session: Any, request: UpstreamRequest, proxy: str | None
) -> UpstreamResponse:
    import aiohttp

    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers]
    try:
        response = await session.request(
            request.method,
            request.url,
            headers=headers,
            data=request.body or None,
            allow_redirects=False,
            proxy=proxy,
        )
    except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise UpstreamTimeout(_describe(exc)) from None
    except aiohttp.ClientError as exc:
        raise UpstreamError(_describe(exc)) from None
    return _AiohttpResponse(response)


# --- httpx -----------------------------------------------------------------------------------


class _HttpxResponse(UpstreamResponse):
    __slots__ = ("_response",)

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(
            response.status_code, [(key.lower(), value) for key, value in response.headers.raw]
        )
        self._response = response

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_bytes():
                yield chunk
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(_describe(exc)) from None
        except (httpx.TransportError, httpx.StreamError) as exc:
            raise UpstreamError(_describe(exc)) from None

    async def aclose(self) -> None:
        await self._response.aclose()


async def _httpx_send(client: httpx.AsyncClient, request: UpstreamRequest) -> UpstreamResponse:
    # Built directly, not with client.build_request: that would add the client's cookie jar.
    outgoing = httpx.Request(
        request.method,
        request.url,
        headers=request.headers,
        content=request.body,
        extensions={"timeout": client.timeout.as_dict()},
    )
    try:
        response = await client.send(outgoing, stream=True)
    except httpx.TimeoutException as exc:
        raise UpstreamTimeout(_describe(exc)) from None
    except httpx.TransportError as exc:
        raise UpstreamError(_describe(exc)) from None
    return _HttpxResponse(response)


def _describe(exc: BaseException) -> str:
    # The type only: an exception's text may hold the upstream's address or what it said, which
    # the provider logs but never shows the client.
    return type(exc).__name__
