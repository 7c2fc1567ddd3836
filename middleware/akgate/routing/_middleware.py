"""The ``Routing`` middleware: model x provider selection, fallback, routing_metadata."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Final, Literal

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
    scope_with_body,
)
from akgate._endpoints import gateway_scope, not_allowed, send_refused
from akgate._options import check_body_size
from akgate._types import ASGIApp, Message, Receive, Scope, Send
from akgate.adapter import ResponsesAdapter
from akgate.auth import RateLimiter
from akgate.context import SCOPE_KEY, Endpoint, RequestContext, request_context
from akgate.errors import GatewayError, send_error
from akgate.messages import MessagesAdapter
from akgate.ops._tracing import TRACER_STATE_KEY, attempt_span
from akgate.sse import MAX_EVENT_SIZE

from ._catalog import Catalog
from ._cost import compute_cost, token_counts
from ._metadata import (
    ChatStreamRewriter,
    MessagesStreamRewriter,
    ResponsesStreamRewriter,
    inject_json,
    merge_warnings,
)
from ._models_api import ModelDirectory
from ._provider_errors import client_error, provider_message, upstream_fault
from ._providers import Provider
from ._registry_api import PublicDirectory
from ._rewrite import provider_payload, read_gateway
from ._stats import InMemoryStats, RoutingStats
from ._strategies import (
    STRATEGY_WEIGHTS,
    Needs,
    Route,
    rank_routes,
    read_needs,
    split_suffix,
)
from ._stream_check import first_event

__all__ = ["Routing"]

logger = logging.getLogger("akgate.routing")

#: Endpoint-table rows answered from the catalog.
_DIRECTORY: Final = frozenset({"models.list", "models.retrieve"})
#: The public discovery endpoints (no key): answered from the catalog by ``PublicDirectory``.
_PUBLIC: Final = frozenset({"directory.models", "registry.models", "registry.providers"})
#: Provider statuses that move on to the next candidate. 401/403 mean the provider's own key is
#: wrong: never the client's fault, so they are not forwarded as such.
_RETRYABLE: Final = frozenset({401, 403, 408, 425, 429})
_FAIL_BODY_CAP: Final = 65536
#: A JSON answer is held whole (to add routing_metadata): a larger one counts as a failed attempt.
MAX_JSON_RESPONSE_SIZE: Final = 32 * 1024 * 1024
_NO_OPTIONS: Final[Mapping[str, Any]] = {}


#: Request headers that carry the client's akgate key.
_CLIENT_KEY_HEADERS: Final = frozenset({b"authorization", b"x-api-key"})


@dataclasses.dataclass(slots=True)
class _Plan:
    endpoint: Endpoint
    payload: dict[str, Any]
    routes: list[Route]
    routing: Mapping[str, Any]
    stream: bool
    strategy: str
    needs: Needs


class _Attempt:
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

    def __init__(
        self,
        route: Route,
        plan: _Plan,
        ctx: RequestContext,
        client_send: Send,
        raw_receive: Receive,
        clock: Callable[[], float],
        t0: float,
        warnings: list[dict[str, str]],
        deadline: float,
    ) -> None:
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
        self.mode = ""
        self.committed = False
        self.finished = False
        self.disconnected = False
        #: The provider's answer was refused before the first byte (not the stream asked for).
        self.rejected = False
        self.exc: BaseException | None = None
        self.buffer: list[bytes] = []
        self.size = 0
        #: The JSON answer cap of this attempt (set with its body, see ``response_cap``).
        self.cap = MAX_JSON_RESPONSE_SIZE
        self.rewriter: (
            ChatStreamRewriter | ResponsesStreamRewriter | MessagesStreamRewriter | None
        ) = None
        self.cancel: anyio.CancelScope | None = None
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
                if not self.committed:
                    if not body and more:
                        return  # nothing yet: keep the start held
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
                    await self._to_client({"type": kind, "body": out, "more_body": False})
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
                        await self._send_json()
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
                ctype = find_header(message.get("headers", ()), b"content-type") or b""
                sse = b"text/event-stream" in ctype
                if not sse and (self.plan.stream or b"json" not in ctype):
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
        if more and b"\n" not in body and b"\r" not in body:
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
            headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
        self.committed = True
        self.t_first = self.clock()
        self._adopt_warnings()
        if self.cancel is not None:
            # The per-attempt timeout covers the wait for the first byte; the deadline remains.
            self.cancel.deadline = self.deadline
        await self._to_client({**start, "headers": headers})

    def _adopt_warnings(self) -> None:
        for w in self.warnings:
            self.ctx.warn(w["type"], w["code"], w["message"])

    async def _send_json(self) -> None:
        start = self.start
        assert start is not None

        def commit(usage: Any) -> dict[str, Any]:
            # Only once the body parsed: the attempt's warnings belong in its metadata.
            self.committed = True
            self.t_first = self.clock()
            self._adopt_warnings()
            return self.finalize(usage)

        body = inject_json(b"".join(self.buffer), commit)
        self.buffer = []
        if body is None:
            # Not a JSON object (e.g. a body cut short): a failed attempt, never a 200 with it.
            self.finished = False
            return
        headers = [(k, v) for k, v in start.get("headers", ()) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode("latin-1")))
        await self._to_client({**start, "headers": headers})
        await self._to_client({"type": "http.response.body", "body": body, "more_body": False})

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
        now = self.clock()
        metadata: dict[str, Any] = {**route.metadata_head, "routing_strategy": self.plan.strategy}
        tokens = token_counts(usage)
        if tokens is not None:
            metadata["cost"] = compute_cost(tokens, route.offering)
            # For the operations layers (access log, metrics, traces): the provider's counts.
            self.ctx.state["routing"]["tokens"] = (tokens.input, tokens.output)
            self.ctx.state["routing"]["usage"] = usage  # the ledger's token counts
        t_first = self.t_first if self.t_first is not None else now
        if self.mode == "sse":
            metadata["ttft_ms"] = round(max(0.0, t_first - self.t0) * 1000, 1)
            elapsed = now - t_first
        else:
            elapsed = now - self.t_start
        if tokens is not None and tokens.output and elapsed > 0:
            self.tps = tokens.output / elapsed
            metadata["throughput_tps"] = round(self.tps, 2)
        if self.ctx.warnings:
            metadata["warnings"] = merge_warnings(self.ctx.warnings)
        if route.offering.tier is not None:
            metadata["tier"] = route.offering.tier
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


_REWRITERS: Final[
    Mapping[str, type[ChatStreamRewriter | ResponsesStreamRewriter | MessagesStreamRewriter]]
] = {
    "chat_completions": ChatStreamRewriter,
    "responses": ResponsesStreamRewriter,
    "messages": MessagesStreamRewriter,
}


def _attempt_outcome(attempt: _Attempt, cancel: anyio.CancelScope | None) -> str:
    if attempt.disconnected:
        return "client_disconnected"
    if cancel is not None and cancel.cancelled_caught:
        return "timeout"
    if not attempt.committed:
        return "failed"
    return "failed_midstream" if attempt.exc is not None else "ok"


class Routing:
    """Route ``/v1/chat/completions`` and ``/v1/responses`` over a catalog of providers.

    The wrapped app is the provider named ``app_provider``; ``providers`` adds more. Every
    successful response carries ``routing_metadata``; ``/v1/models`` is answered from the
    catalog, and so are the public ``/v1/directory/models``, ``/v1/registry/models`` and
    ``/v1/registry/providers`` (``public_endpoints=False`` turns them off; each client address
    gets ``public_rate_limit`` requests a minute). Other paths pass through to the wrapped app
    untouched.

    ``hosted_tools`` (``"strict"`` or ``"lenient"``) is the policy of the Responses adapters
    routing puts in front of chat-only providers (see :class:`akgate.ResponsesAdapter`), and
    ``inline_files`` whether those adapters pass inline ``input_file`` parts on as chat ``file``
    parts (providers whose catalog entry lacks ``capabilities.files`` never get files).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        catalog: Catalog | Mapping[str, Any] | str | None = None,
        providers: Iterable[Provider] = (),
        app_provider: str | Provider | None = "app",
        stats: RoutingStats | None = None,
        default_optimize: str = "cost-focus",
        max_fallback_attempts: int = 3,
        timeout_ms: int | None = None,
        test_keys_use_test_providers: bool = True,
        models_endpoint: bool = True,
        public_endpoints: bool = True,
        public_rate_limit: int | None = 60,
        public_rate_limiter: RateLimiter | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        messages_options: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        hosted_tools: Literal["strict", "lenient"] = "strict",
        inline_files: bool = False,
    ) -> None:
        if hosted_tools not in ("strict", "lenient"):
            raise ValueError("hosted_tools must be 'strict' or 'lenient'")
        #: The Responses adapter's policy for hosted tools on chat-only providers.
        self.hosted_tools = hosted_tools
        #: Its Responses adapters pass inline ``input_file`` parts to chat-only providers.
        self.inline_files = inline_files
        self.app = app
        #: Options of the MessagesAdapter wrapped around each chat-only provider.
        self.messages_options: dict[str, Any] = {
            "max_body_size": max_body_size,
            **(messages_options or {}),
        }
        self.catalog = Catalog.load(catalog)
        if default_optimize not in STRATEGY_WEIGHTS:
            raise ValueError(f"default_optimize must be one of {sorted(STRATEGY_WEIGHTS)}")
        if not 0 <= max_fallback_attempts <= 19:
            raise ValueError("max_fallback_attempts must be between 0 and 19")
        if timeout_ms is not None and timeout_ms <= 0:
            raise ValueError("timeout_ms must be > 0")
        self.default_optimize = default_optimize
        self.max_fallback_attempts = max_fallback_attempts
        self.timeout_ms = timeout_ms
        self.test_keys_use_test_providers = test_keys_use_test_providers
        self.max_body_size = check_body_size(max_body_size)
        self.clock = clock
        self.stats: RoutingStats = stats if stats is not None else InMemoryStats()
        self.providers = self._registry(app, app_provider, providers)
        self._known = frozenset(self.providers)
        self._apps = self._provider_apps()
        self._routes = self._build_routes()
        self._directory = ModelDirectory(self.catalog, self.providers) if models_endpoint else None
        self._public = (
            PublicDirectory(
                self.catalog,
                self.providers,
                rate_limit=public_rate_limit,
                limiter=public_rate_limiter,
            )
            if public_endpoints
            else None
        )

    # -- configuration ---------------------------------------------------------------------
    def _registry(
        self,
        app: ASGIApp,
        app_provider: str | Provider | None,
        providers: Iterable[Provider],
    ) -> dict[str, Provider]:
        registry: dict[str, Provider] = {}
        listed: list[Provider] = []
        if isinstance(app_provider, str):
            listed.append(Provider(app_provider, app))
        elif isinstance(app_provider, Provider):
            listed.append(app_provider)
        listed.extend(providers)
        for provider in listed:
            if not isinstance(provider, Provider):
                raise ValueError(f"providers must be Provider objects, not {provider!r}")
            if provider.name in registry:
                raise ValueError(f"provider {provider.name!r} is defined twice")
            if provider.app is None:
                provider = dataclasses.replace(provider, app=app)
            registry[provider.name] = provider
        missing = self.catalog.provider_names() - registry.keys()
        if "demo" in missing:
            # The embedded demo model serves the default catalog out of the box.
            registry["demo"] = Provider.demo()
            missing.discard("demo")
        if missing:
            raise ValueError(f"catalog names providers that are not configured: {sorted(missing)}")
        return registry

    def _provider_apps(self) -> dict[tuple[str, str], ASGIApp]:
        apps: dict[tuple[str, str], ASGIApp] = {}
        for provider in self.providers.values():
            assert provider.app is not None
            if "chat_completions" in provider.endpoints:
                apps[(provider.name, "chat_completions")] = provider.app
            if "responses" in provider.endpoints:
                apps[(provider.name, "responses")] = provider.app
            else:
                apps[(provider.name, "responses")] = ResponsesAdapter(
                    provider.app, hosted_tools=self.hosted_tools, inline_files=self.inline_files
                )
            if "messages" in provider.endpoints:
                apps[(provider.name, "messages")] = provider.app
            elif "chat_completions" in provider.endpoints:
                apps[(provider.name, "messages")] = MessagesAdapter(
                    provider.app, **{"hosted_tools": self.hosted_tools, **self.messages_options}
                )
        return apps

    def _build_routes(self) -> dict[str, tuple[Route, ...]]:
        routes: dict[str, tuple[Route, ...]] = {}
        for model in self.catalog.models:
            entries = []
            for offering in model.providers:
                provider = self.providers[offering.name]
                served = set(offering.endpoints)
                if "chat_completions" in served:
                    served.add("messages")  # through the Messages adapter
                endpoints = frozenset(e for e in served if (provider.name, e) in self._apps)
                entries.append(
                    Route(
                        model=model,
                        offering=offering,
                        provider=provider,
                        provider_model_id=model.provider_model_id(offering),
                        data_policy=offering.data_policy or provider.data_policy,
                        endpoints=endpoints,
                        price=(offering.input_price + offering.output_price) / 2,
                        key=(provider.name, model.id),
                        metadata_head={
                            "provider": provider.name,
                            "provider_model_id": model.provider_model_id(offering),
                            "model_canonical": model.id,
                        },
                    )
                )
            routes[model.id] = tuple(entries)
        return routes

    # -- requests ----------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope, resolution = gateway_scope(scope)
        if resolution is None:
            await self.app(scope, receive, send)
            return
        if resolution.refused:
            await send_refused(scope, send, resolution)
            return
        spec = resolution.spec
        if spec is not None and spec.name in _DIRECTORY and self._directory is not None:
            scope, send, _ = request_context(scope, send)
            await self._directory(scope, resolution.path, send)
            return
        if spec is not None and spec.name in _PUBLIC and self._public is not None:
            scope, send, _ = request_context(scope, send)
            await self._public(scope, resolution.path, send)
            return
        endpoint = spec.kind if spec is not None else None
        if endpoint == "messages" and scope.get("method") != "POST":
            # Nothing else lives at the Messages paths (Anthropic's envelope, like every error
            # there).
            assert spec is not None
            scope, send, _ = request_context(scope, send)
            await send_error(send, not_allowed(spec))
            return
        if endpoint is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        t0 = self.clock()
        scope, send, ctx = request_context(scope, send)
        try:
            payload = await read_request_json(scope, receive, ctx, max_size=self.max_body_size)
            if ctx.endpoint is None:
                ctx.endpoint = endpoint
            plan = await self._plan(payload, ctx, endpoint)
        except GatewayError as err:
            await send_error(send, err)
            return
        except ClientDisconnected:
            return
        await self._run(plan, scope, receive, send, ctx, t0)

    async def _plan(
        self, payload: dict[str, Any], ctx: RequestContext, endpoint: Endpoint
    ) -> _Plan:
        gateway = read_gateway(payload, validated=ctx.validated)
        routing: Mapping[str, Any] = gateway.get("routing") or _NO_OPTIONS
        names = gateway.get("models")
        if names:
            groups, suffix_strategy = self._candidates(names, listed=True)
        else:
            groups, suffix_strategy = self._candidates((payload.get("model"),), listed=False)
        weights = routing.get("weights")
        if weights:
            strategy = "custom"
            triple = (
                float(weights.get("cost") or 0),
                float(weights.get("ttft") or 0),
                float(weights.get("throughput") or 0),
            )
        else:
            strategy = routing.get("optimize") or suffix_strategy or self.default_optimize
            triple = STRATEGY_WEIGHTS.get(strategy, STRATEGY_WEIGHTS[self.default_optimize])
        if routing:
            self._warn_unknown_providers(routing, ctx)
        several = len(groups) > 1 or len(groups[0]) > 1
        perf = {}
        if several or "max_ttft_ms" in routing or "min_throughput_tps" in routing:
            try:
                perf = dict(await self.stats.snapshot([r.key for g in groups for r in g]))
            except Exception as exc:  # stats are advisory
                logger.warning("akgate routing stats unavailable (%s)", type(exc).__name__)
        identity = ctx.identity
        needs = read_needs(payload, endpoint)
        routes = rank_routes(
            groups,
            endpoint,
            needs,
            routing,
            perf,
            triple,
            test_only=self.test_keys_use_test_providers
            and identity is not None
            and identity.environment == "test",
        )
        if routing.get("allow_fallbacks") is False:
            routes = routes[:1]
        else:
            fallbacks = routing.get("max_fallback_attempts")
            routes = routes[: 1 + (self.max_fallback_attempts if fallbacks is None else fallbacks)]
        return _Plan(
            endpoint=endpoint,
            payload=payload,
            routes=routes,
            routing=routing,
            stream=payload.get("stream") is True,
            strategy=strategy,
            needs=needs,
        )

    def _candidates(
        self, names: Iterable[Any], *, listed: bool
    ) -> tuple[list[tuple[Route, ...]], str | None]:
        """The routes of each requested model (one group per distinct model), and the strategy
        named by a ``model:strategy`` suffix. ``listed``: the names come from ``gateway.models``."""
        groups: list[tuple[Route, ...]] = []
        seen: set[str] = set()
        suffix_strategy: str | None = None
        for i, name in enumerate(names):
            model = self.catalog.get(name) if isinstance(name, str) else None
            if model is None and isinstance(name, str):
                base, suffix = split_suffix(name)
                if suffix is not None:
                    model = self.catalog.get(base)
                    suffix_strategy = suffix_strategy or suffix
            if model is None:
                raise GatewayError(
                    "model_not_found",
                    f"Model '{name}' is not in the catalog. See GET /v1/models for the "
                    "current list.",
                    f"gateway.models[{i}]" if listed else "model",
                )
            if model.id not in seen:
                seen.add(model.id)
                groups.append(self._routes[model.id])
        return groups, suffix_strategy

    def _warn_unknown_providers(self, routing: Mapping[str, Any], ctx: RequestContext) -> None:
        for key in ("providers", "exclude_providers", "prefer"):
            value = routing.get(key)
            if value is None:
                continue
            for name in [value] if isinstance(value, str) else value:
                if name not in self.providers:
                    ctx.warn(
                        "unknown_provider",
                        f"gateway.routing.{key}",
                        f"gateway.routing.{key} names unknown provider '{name}'.",
                    )

    async def _run(
        self,
        plan: _Plan,
        scope: Scope,
        receive: Receive,
        send: Send,
        ctx: RequestContext,
        t0: float,
    ) -> None:
        routing = plan.routing
        deadline_ms = routing.get("deadline_ms")
        timeout_ms = routing.get("timeout_ms") or self.timeout_ms
        # Clock reads and cancel scopes cost microseconds: only pay for them when needed.
        timed = bool(deadline_ms or timeout_ms)
        deadline = anyio.current_time() + deadline_ms / 1000 if deadline_ms else math.inf
        raw_receive = ctx.raw_receive or receive
        attempts: list[dict[str, Any]] = []
        ctx.state["routing"] = {"strategy": plan.strategy, "attempts": attempts}
        last_error: GatewayError | None = None
        timed_out_providers: list[str] = []
        known = self._known
        if ctx.identity is not None:
            # The akgate key was checked and consumed by the auth layer: providers (the wrapped
            # app included) see the identity in the scope, never the client's secret.
            scope = {
                **scope,
                "headers": [h for h in scope.get("headers", ()) if h[0] not in _CLIENT_KEY_HEADERS],
            }
        for route in plan.routes:
            now = anyio.current_time() if timed else 0.0
            if now >= deadline:
                last_error = GatewayError(
                    "upstream_timeout", "The request deadline (deadline_ms) was exceeded."
                )
                break
            body_obj, warnings = provider_payload(
                plan.payload,
                plan.endpoint,
                route,
                plan.needs,
                stream=plan.stream,
                strip_blocked=not ctx.validated,
                known_providers=known,
            )
            for name in timed_out_providers:
                warnings.append(
                    {
                        "type": "provider_timeout",
                        "code": f"provider.{name}",
                        "message": f"Provider '{name}' timed out; the request fell back to "
                        f"'{route.provider.name}'.",
                    }
                )
            body = dumps(body_obj)
            child = ctx.child(body_obj, body, plan.endpoint)
            attempt_scope = scope_with_body(scope, body)
            attempt_scope[SCOPE_KEY] = child
            attempt = _Attempt(
                route, plan, ctx, send, raw_receive, self.clock, t0, warnings, deadline
            )
            # Streams always get a cancel scope (a client disconnect stops the provider); plain
            # JSON calls only with a timeout, else the provider's own disconnect watch applies.
            cancel: anyio.CancelScope | None = None
            if timed or plan.stream:
                cancel = anyio.CancelScope(
                    deadline=min(now + timeout_ms / 1000, deadline) if timeout_ms else deadline
                )
            attempt.cancel = cancel
            attempt.cap = response_cap(MAX_JSON_RESPONSE_SIZE, len(body))

            app = self._apps[(route.provider.name, plan.endpoint)]
            # A child span per attempt when the request is traced (akgate.ops.Tracing).
            traced = TRACER_STATE_KEY in ctx.state
            span_scope: AbstractContextManager[dict[str, Any]] = (
                attempt_span(ctx, route.provider.name, route.provider_model_id)
                if traced
                else nullcontext({})
            )
            with span_scope as span:
                if cancel is None:
                    try:
                        await app(attempt_scope, replay_receive(body, attempt.relay), attempt.send)
                    except Exception as exc:
                        attempt.exc = exc
                else:
                    with cancel:
                        try:
                            await app(
                                attempt_scope, replay_receive(body, attempt.relay), attempt.send
                            )
                        except Exception as exc:
                            attempt.exc = exc
                if traced:
                    span["outcome"] = _attempt_outcome(attempt, cancel)
            record = {"provider": route.provider.name, "model": route.model.id}
            attempts.append(record)
            if attempt.exc is not None:
                # A provider app raising is a bug in it (for "app", the user's own route).
                log_app_exception(
                    logger, f"provider {route.provider.name!r}", attempt.exc, ctx.request_id
                )
            if attempt.committed:  # what reached the client: the spend layer prices cut streams
                ctx.state["routing"]["route"] = route
            if attempt.disconnected:
                record["outcome"] = "client_disconnected"
                attempt.release()
                return
            timed_out = cancel is not None and cancel.cancelled_caught and not attempt.rejected
            if attempt.committed:
                await self._complete(attempt, record, send, timed_out)
                attempt.release()
                return
            attempt.release()
            record["outcome"] = "timeout" if timed_out else "failed"
            if timed_out:
                timed_out_providers.append(route.provider.name)
            last_error = attempt.failure(timed_out)
        if last_error is None:
            last_error = GatewayError("no_provider_available", "No provider could be tried.")
        await send_error(send, last_error)

    async def _complete(
        self, attempt: _Attempt, record: dict[str, Any], send: Send, timed_out: bool
    ) -> None:
        """The attempt reached the client: close the response, record stats."""
        if not attempt.finished:
            # Failure after the first byte: never retried; end with an explicit error.
            record["outcome"] = "failed_midstream"
            tail = b""
            if attempt.rewriter is not None:
                if timed_out:
                    tail = attempt.rewriter.abort(
                        "upstream_timeout", "The request deadline was exceeded mid-stream."
                    )
                else:
                    tail = attempt.rewriter.abort(
                        "upstream_error", "The provider failed mid-stream."
                    )
            await attempt._to_client(
                {"type": "http.response.body", "body": tail, "more_body": False}
            )
            return
        rewriter = attempt.rewriter
        failed = rewriter is not None and rewriter.failed
        record["outcome"] = "failed_midstream" if failed else "ok"
        if attempt.metadata is not None and not failed:
            attempt.ctx.state["routing"]["metadata"] = attempt.metadata
            ttft = None
            if attempt.mode == "sse" and attempt.t_first is not None:
                ttft = (attempt.t_first - attempt.t_start) * 1000
            try:
                await self.stats.record(
                    attempt.route.provider.name,
                    attempt.route.model.id,
                    ttft_ms=ttft,
                    tps=attempt.tps,
                )
            except Exception as exc:  # advisory
                logger.warning("akgate routing stats: record failed (%s)", type(exc).__name__)
