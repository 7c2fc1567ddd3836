"""``HealthChecks``: ``GET /healthz`` (the process answers) and ``GET /readyz`` (what the gateway
depends on answers: key store, Redis, response store, upstreams).

Both are answered before any other layer sees the request: no key, no body, no access-log line,
and outside ``/v1`` so they never collide with the wrapped app's routes. ``/readyz`` runs every
check concurrently, each under a timeout, and answers 503 naming the failing components.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

import anyio

from akgate._asgi import route_path, send_json
from akgate._types import ASGIApp, Receive, Scope, Send

__all__ = ["Check", "HealthChecks", "discover_checks", "key_store_check", "tcp_check"]

#: A readiness check: returns when the component answers, raises when it does not.
Check = Callable[[], Awaitable[None]]
_MAX_DEPTH: Final = 32


def key_store_check(store: Any) -> Check:
    """The store's backend must answer: Redis is pinged; any other store looks up a fresh
    random hash (no key has it, and no lookup cache can answer for the backend)."""
    client = getattr(store, "client", None)
    if client is not None and callable(getattr(client, "ping", None)):
        return redis_check(client)

    async def check() -> None:
        await store.lookup(secrets.token_hex(32))

    return check


def response_store_check(store: Any) -> Check:
    """Load a response id no one has: the response store's backend must answer."""

    async def check() -> None:
        await store.load("default", "resp_readyz_" + secrets.token_hex(12))

    return check


def redis_check(client: Any) -> Check:
    async def check() -> None:
        await client.ping()

    return check


def tcp_check(url: str) -> Check:
    """Open (and close) a TCP connection to ``url``'s host and port: reachable, no request sent
    (a readiness probe every few seconds must not spend an upstream's quota)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)

    async def check() -> None:
        stream = await anyio.connect_tcp(host, port)
        await stream.aclose()

    return check


def _chain(app: Any) -> Iterator[Any]:
    """``app`` and every layer below it, following ``.app`` (``.stack`` of ``Gateway``, and
    ``.gateway_app`` of the Django mount first: the gateway is where the dependencies are)."""
    seen: set[int] = set()
    for _ in range(_MAX_DEPTH):
        if app is None or id(app) in seen:
            return
        seen.add(id(app))
        yield app
        app = (
            getattr(app, "gateway_app", None)
            or getattr(app, "stack", None)
            or getattr(app, "app", None)
        )


def discover_checks(app: ASGIApp) -> dict[str, Check]:
    """Readiness checks for what an akgate stack below ``app`` depends on: the key store of
    ``APIKeyAuth`` (Redis included), the Redis routing stats, the response store of
    ``StatefulResponses``, and every
    ``UpstreamProvider`` routing can call (by TCP connect)."""
    from akgate.providers._upstream import UpstreamProvider

    checks: dict[str, Check] = {}
    upstreams: set[int] = set()  # one check per upstream, named after its routing provider
    for layer in _chain(app):
        store = getattr(layer, "store", None)
        if store is not None and callable(getattr(store, "lookup", None)):
            checks.setdefault("key_store", key_store_check(store))
        elif store is not None and callable(getattr(store, "load", None)):
            checks.setdefault("response_store", response_store_check(store))
        stats = getattr(layer, "stats", None)
        client = getattr(stats, "redis", None)
        if client is not None and callable(getattr(client, "ping", None)):
            checks.setdefault("redis", redis_check(client))
        providers = getattr(layer, "providers", None)
        if isinstance(providers, Mapping):
            for name, provider in providers.items():
                target = getattr(provider, "app", None)
                if isinstance(target, UpstreamProvider) and id(target) not in upstreams:
                    upstreams.add(id(target))
                    checks.setdefault(f"upstream:{name}", tcp_check(target.base_url))
        if isinstance(layer, UpstreamProvider) and id(layer) not in upstreams:
            upstreams.add(id(layer))
            checks.setdefault("upstream", tcp_check(layer.base_url))
    return checks


class HealthChecks:
    """Answer ``healthz_path`` and ``readyz_path``; everything else goes to ``app``.

    Options (keyword-only):

    * ``healthz_path``, ``readyz_path``: the liveness and readiness paths (``None``: not served).
    * ``checks``: ``"auto"`` (default) finds them in the akgate stack below
      (:func:`discover_checks`); a mapping ``name -> async callable`` replaces them.
    * ``extra_checks``: more checks, added to either.
    * ``timeout``: seconds per check (a slow check fails as ``"failed: timeout"``).

    See ``docs/operations.md``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        healthz_path: str | None = "/healthz",
        readyz_path: str | None = "/readyz",
        checks: Mapping[str, Check] | str = "auto",
        extra_checks: Mapping[str, Check] | None = None,
        timeout: float = 2.0,
    ) -> None:
        for path in (healthz_path, readyz_path):
            if path is not None and not path.startswith("/"):
                raise ValueError(f"paths must start with '/': {path!r}")
        if timeout <= 0:
            raise ValueError("timeout must be > 0")
        if isinstance(checks, str):
            if checks != "auto":
                raise ValueError("checks must be 'auto' or a mapping of name -> async callable")
            found = discover_checks(app)
        else:
            found = dict(checks)
        found.update(extra_checks or {})
        self.app = app
        self.healthz_path = healthz_path
        self.readyz_path = readyz_path
        self.checks = found
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"HealthChecks({self.app!r}, checks={sorted(self.checks)})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = route_path(scope)
            if path == self.healthz_path or path == self.readyz_path:
                if scope.get("method") not in ("GET", "HEAD"):
                    await send_json(
                        send,
                        405,
                        {"status": "error", "message": "Use GET."},
                        headers=[(b"allow", b"GET")],
                    )
                elif path == self.healthz_path:
                    await send_json(send, 200, {"status": "ok"}, headers=_NO_STORE)
                else:
                    await self._ready(send)
                return
        await self.app(scope, receive, send)

    async def readiness(self) -> dict[str, str]:
        """``name -> "ok"`` or ``"failed: <ExceptionType>"`` (``"failed: timeout"``)."""
        results: dict[str, str] = {}

        async def run(name: str, check: Check) -> None:
            try:
                with anyio.fail_after(self.timeout):
                    await check()
            except TimeoutError:
                results[name] = "failed: timeout"
            except Exception as exc:
                # The type only: a backend's message may hold a URL with credentials.
                results[name] = f"failed: {type(exc).__name__}"
            else:
                results[name] = "ok"

        async with anyio.create_task_group() as tg:
            for name, check in self.checks.items():
                tg.start_soon(run, name, check)
        return {name: results[name] for name in sorted(results)}

    async def _ready(self, send: Send) -> None:
        results = await self.readiness()
        failing = [name for name, result in results.items() if result != "ok"]
        body: dict[str, Any] = {"status": "unavailable" if failing else "ok", "checks": results}
        if failing:
            body["failing"] = failing
        await send_json(send, 503 if failing else 200, body, headers=_NO_STORE)


_NO_STORE: Final = [(b"cache-control", b"no-store")]
