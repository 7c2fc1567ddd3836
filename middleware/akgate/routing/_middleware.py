"""The ``Routing`` middleware: plan a request (model x provider candidates, ranked) and run it
(one ``Attempt`` per candidate until one reaches the client, else the last failure's error).
The provider registry and routes are built in ``_registry``, one provider call is ``_attempt``."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Literal

from akgate._applog import log_app_exception
from akgate._asgi import (
    DEFAULT_MAX_BODY_SIZE,
    ClientDisconnected,
    dumps,
    read_request_json,
    replay_receive,
)
from akgate._endpoints import Resolution, gateway_scope, not_allowed, send_refused
from akgate._options import check_body_size
from akgate._types import ASGIApp, Receive, Scope, Send
from akgate.auth import RateLimiter
from akgate.context import SCOPE_KEY, Endpoint, RequestContext, request_context
from akgate.errors import GatewayError, send_error
from akgate.ops._tracing import TRACER_STATE_KEY, attempt_span
from akgate.validation._simple import PLAIN_REQUEST

from ._attempt import Attempt, Plan, attempt_outcome
from ._cancel import CallScope, current_time, open_scope
from ._catalog import Catalog
from ._models_api import ModelDirectory
from ._providers import Provider
from ._registry import build_routes, provider_apps, provider_registry
from ._registry_api import PublicDirectory
from ._rewrite import provider_payload, read_gateway
from ._stats import InMemoryStats, RoutingStats
from ._strategies import (
    NO_NEEDS,
    STRATEGY_WEIGHTS,
    Needs,
    Route,
    plain_needs,
    rank_routes,
    read_needs,
    split_suffix,
)

__all__ = ["Routing"]

logger = logging.getLogger("akgate.routing")

#: Endpoint-table rows answered from the catalog.
_DIRECTORY: Final = frozenset({"models.list", "models.retrieve"})
#: The public discovery endpoints (no key): answered from the catalog by ``PublicDirectory``.
_PUBLIC: Final = frozenset({"directory.models", "registry.models", "registry.providers"})
_NO_OPTIONS: Final[Mapping[str, Any]] = {}
#: Request headers that carry the client's akgate key.
_CLIENT_KEY_HEADERS: Final = frozenset({b"authorization", b"x-api-key"})
#: Request headers a provider never gets: the body is rewritten (its length is set anew) ...
_DROPPED: Final = frozenset({b"content-length", b"transfer-encoding"})
#: ... and, once the auth layer consumed it, the client's key.
_DROPPED_WITH_KEY: Final = _DROPPED | _CLIENT_KEY_HEADERS


class Routing:
    """Route ``/v1/chat/completions`` and ``/v1/responses`` over a catalog of providers.

    The wrapped app is the provider named ``app_provider``; ``providers`` adds more. Every
    successful response carries ``routing_metadata``; ``/v1/models`` is answered from the
    catalog, and so are the public ``/v1/directory/models``, ``/v1/registry/models`` and
    ``/v1/registry/providers`` (``public_endpoints=False`` turns them off; each client address
    gets ``public_rate_limit`` requests a minute). Other paths pass through to the wrapped app
    untouched.

    Options (keyword-only):

    * ``catalog``: a :class:`~akgate.routing.Catalog`, a mapping or a JSON/TOML path (default:
      the demo catalog).
    * ``providers``: more :class:`~akgate.routing.Provider` objects; every provider the catalog
      names must be configured (the demo one is added by itself).
    * ``app_provider``: the wrapped app's provider name, or a ``Provider`` whose ``app`` is
      ``None`` (default ``"app"``; ``None``: the wrapped app is not a provider).
    * ``stats``: where TTFT and throughput samples go (default in memory; ``RedisStats``).
    * ``default_optimize``: the strategy when the request names none (``"cost-focus"``).
    * ``max_fallback_attempts``: fallbacks after the first attempt (default 3, at most 19).
    * ``timeout_ms``: the default per-attempt timeout until the first byte (``None``: none).
    * ``test_keys_use_test_providers``: ``ak_test_`` keys only reach ``test=True`` providers.
    * ``models_endpoint``: answer ``/v1/models`` from the catalog (default ``True``).
    * ``public_endpoints``, ``public_rate_limit``, ``public_rate_limiter``: the keyless
      directory and registry endpoints, and their per-address limit (60 a minute).
    * ``max_body_size``: request body cap in bytes (413 above it).
    * ``messages_options``: options of the ``MessagesAdapter`` put in front of chat-only
      providers.
    * ``clock``: the clock of ``ttft_ms`` and ``throughput_tps`` (tests inject one).
    * ``hosted_tools``: ``"strict"`` or ``"lenient"``, the policy of the Responses adapters
      routing puts in front of chat-only providers (see :class:`akgate.ResponsesAdapter`).
    * ``inline_files``: whether those adapters pass inline ``input_file`` parts on as chat
      ``file`` parts (providers whose catalog entry lacks ``capabilities.files`` never get
      files).

    See ``docs/routing.md``.
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
        self.providers = provider_registry(self.catalog, app, app_provider, providers)
        self._known = frozenset(self.providers)
        self._apps = provider_apps(
            self.providers,
            hosted_tools=hosted_tools,
            inline_files=inline_files,
            messages_options=self.messages_options,
        )
        self._routes = build_routes(self.catalog, self.providers, self._apps)
        #: ``(model name, endpoint)`` -> the model's only route, where ranking has nothing to
        #: decide: it serves the endpoint and needs no premium opt-in (see ``_plan``). Keyed by
        #: every name a request may use (the id and the aliases): no catalog lookup for it.
        self._only_by_name: dict[tuple[str, str], Route] = {}
        for model in self.catalog.models:
            routes = self._routes[model.id]
            if len(routes) == 1 and not routes[0].offering.premium:
                for name in (model.id, *model.aliases):
                    for endpoint in routes[0].endpoints:
                        self._only_by_name[(name, endpoint)] = routes[0]
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

    # -- requests ----------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        known: Any = scope.get(SCOPE_KEY)
        route = known.route if type(known) is RequestContext else None
        resolution: Resolution | None
        if route is not None and route[0] == scope["path"]:
            # What gateway_scope answers when an outer layer resolved this path (inline).
            resolution = route[1]  # type: ignore[assignment]
        else:
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
        if route is not None:  # (an outer layer's context: what request_context returns)
            ctx = known
        else:
            scope, send, ctx = request_context(scope, send)
        try:
            payload = await read_request_json(scope, receive, ctx, max_size=self.max_body_size)
            if ctx.endpoint is None:
                ctx.endpoint = endpoint
            # (The usual plan without a coroutine of its own: see ``_plan``.)
            found = self._plan_or_ranking(payload, ctx, endpoint)
            plan = found if isinstance(found, Plan) else await self._ranked_plan(*found)
        except GatewayError as err:
            await send_error(send, err)
            return
        except ClientDisconnected:
            return
        await self._run(plan, scope, receive, send, ctx, t0)

    async def _plan(self, payload: dict[str, Any], ctx: RequestContext, endpoint: Endpoint) -> Plan:
        found = self._plan_or_ranking(payload, ctx, endpoint)
        return found if isinstance(found, Plan) else await self._ranked_plan(*found)

    def _plan_or_ranking(
        self, payload: dict[str, Any], ctx: RequestContext, endpoint: Endpoint
    ) -> Plan | tuple[Any, ...]:
        """The usual request's plan, or the arguments of ``_ranked_plan`` for any other."""
        gateway = read_gateway(payload, validated=ctx.validated)
        routing: Mapping[str, Any] = gateway.get("routing") or _NO_OPTIONS
        names = gateway.get("models")
        model = None if names else payload.get("model")
        needs = (
            plain_needs(payload)
            if ctx.state.get(PLAIN_REQUEST) is payload  # (the validation layer's finding)
            else read_needs(payload, endpoint)
        )
        if type(model) is str and not routing and (needs is NO_NEEDS or _ranks_nothing(needs)):
            # The usual request: one model, no routing options, nothing that filters routes.
            # When the model has one route that serves the endpoint, ranking keeps it; for a
            # test key it keeps it when a test provider serves it (akgate serve's demo key).
            only = self._only_by_name.get((model, endpoint))
            identity = ctx.identity
            if only is not None and (
                only.provider.test
                or not self.test_keys_use_test_providers
                or identity is None
                or identity.environment != "test"
            ):
                return Plan(  # (positional: endpoint, payload, routes, routing, stream ...)
                    endpoint,
                    payload,
                    [only],
                    routing,
                    payload.get("stream") is True,
                    self.default_optimize,
                    needs,
                )
        catalog_model = self.catalog.get(model) if type(model) is str else None
        return (payload, ctx, endpoint, routing, names, model, catalog_model, needs)

    async def _ranked_plan(
        self,
        payload: dict[str, Any],
        ctx: RequestContext,
        endpoint: Endpoint,
        routing: Mapping[str, Any],
        names: Any,
        model: Any,
        catalog_model: Any,
        needs: Needs,
    ) -> Plan:
        """The general plan: candidates filtered and ranked (``rank_routes``)."""
        if catalog_model is not None:
            # The usual request: one model, named by its id or an alias.
            groups, suffix_strategy = [self._routes[catalog_model.id]], None
        elif names:
            groups, suffix_strategy = self._candidates(names, listed=True)
        else:
            groups, suffix_strategy = self._candidates((model,), listed=False)
        if routing:
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
            self._warn_unknown_providers(routing, ctx)
        else:
            strategy = suffix_strategy or self.default_optimize
            triple = STRATEGY_WEIGHTS.get(strategy, STRATEGY_WEIGHTS[self.default_optimize])
        perf = {}
        if (
            len(groups) > 1
            or len(groups[0]) > 1
            or "max_ttft_ms" in routing
            or "min_throughput_tps" in routing
        ):
            try:
                perf = dict(await self.stats.snapshot([r.key for g in groups for r in g]))
            except Exception as exc:  # stats are advisory
                logger.warning("akgate routing stats unavailable (%s)", type(exc).__name__)
        identity = ctx.identity
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
        if not routing:
            routes = routes[: 1 + self.max_fallback_attempts]
        elif routing.get("allow_fallbacks") is False:
            routes = routes[:1]
        else:
            fallbacks = routing.get("max_fallback_attempts")
            routes = routes[: 1 + (self.max_fallback_attempts if fallbacks is None else fallbacks)]
        return Plan(
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
        plan: Plan,
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
        deadline = current_time() + deadline_ms / 1000 if deadline_ms else math.inf
        raw_receive = ctx.raw_receive or receive
        attempts: list[dict[str, Any]] = []
        state = ctx.state["routing"] = {"strategy": plan.strategy, "attempts": attempts}
        last_error: GatewayError | None = None
        timed_out_providers: list[str] | None = None  # (made for the first timeout)
        known = self._known
        strip = not ctx.validated  # (validation already removed extensions' blocked keys)
        # The akgate key was checked and consumed by the auth layer: providers (the wrapped app
        # included) see the identity in the scope, never the client's secret.
        dropped = _DROPPED_WITH_KEY if ctx.identity is not None else _DROPPED
        for route in plan.routes:
            now = current_time() if timed else 0.0
            if now >= deadline:
                last_error = GatewayError(
                    "upstream_timeout", "The request deadline (deadline_ms) was exceeded."
                )
                break
            body_obj, warnings = provider_payload(  # (positional: faster to bind)
                plan.payload, plan.endpoint, route, plan.needs, plan.stream, strip, known
            )
            if timed_out_providers is not None:
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
            attempt_scope = _provider_scope(
                scope, body, ctx.child(body_obj, body, plan.endpoint), dropped
            )
            # Streams always get a cancel scope (a client disconnect stops the provider); plain
            # JSON calls only with a timeout, else the provider's own disconnect watch applies.
            cancel: CallScope | None = None
            if timed or plan.stream:
                cancel = open_scope(
                    min(now + timeout_ms / 1000, deadline) if timeout_ms else deadline
                )
            attempt = Attempt(  # (positional, in the order of its parameters)
                route,
                plan,
                ctx,
                send,
                raw_receive,
                self.clock,
                t0,
                warnings,
                deadline,
                cancel,
                len(body),
            )

            app = self._apps[(route.provider.name, plan.endpoint)]
            # A child span per attempt when the request is traced (akgate.ops.Tracing); an
            # untraced attempt enters no context manager at all.
            if TRACER_STATE_KEY in ctx.state:
                with attempt_span(ctx, route.provider.name, route.provider_model_id) as span:
                    await _call_provider(app, attempt_scope, body, attempt, cancel)
                    span["outcome"] = attempt_outcome(attempt, cancel)
            elif cancel is None:
                # ``_call_provider``, inlined: a coroutine less per request.
                try:
                    await app(attempt_scope, replay_receive(body, attempt.relay), attempt.send)
                except Exception as exc:
                    attempt.exc = exc
            else:
                with cancel:
                    try:
                        await app(attempt_scope, replay_receive(body, attempt.relay), attempt.send)
                    except Exception as exc:
                        attempt.exc = exc
            # (The route's key holds both names: the catalog model's ``id`` is a pydantic
            # attribute, slower to read.)
            record = {"provider": route.key[0], "model": route.key[1]}
            attempts.append(record)
            if attempt.exc is not None:
                # A provider app raising is a bug in it (for "app", the user's own route).
                log_app_exception(
                    logger, f"provider {route.provider.name!r}", attempt.exc, ctx.request_id
                )
            if attempt.committed:  # what reached the client: the spend layer prices cut streams
                state["route"] = route
            if attempt.disconnected:
                record["outcome"] = "client_disconnected"
                attempt.release()
                return
            timed_out = cancel is not None and cancel.cancelled_caught and not attempt.rejected
            if attempt.committed:
                if not attempt.finished:
                    # Failure after the first byte: never retried; end with an explicit error.
                    record["outcome"] = "failed_midstream"
                    await attempt.end_midstream(timed_out)
                else:
                    sample = self._complete(attempt, record, state)
                    if sample is not None:
                        await self._record_stats(attempt, *sample)
                attempt.release()
                return
            attempt.release()
            record["outcome"] = "timeout" if timed_out else "failed"
            if timed_out:
                if timed_out_providers is None:
                    timed_out_providers = []
                timed_out_providers.append(route.provider.name)
            last_error = attempt.failure(timed_out)
        if last_error is None:
            last_error = GatewayError("no_provider_available", "No provider could be tried.")
        await send_error(send, last_error)

    def _complete(
        self, attempt: Attempt, record: dict[str, Any], state: dict[str, Any]
    ) -> tuple[float | None, float | None] | None:
        """The attempt reached the client and finished: its outcome and metadata (in ``state``,
        the request's routing record), and its stats sample, recorded here for the in-memory
        stats; ``(ttft_ms, tps)`` to record with ``_record_stats`` for any other (``None``:
        nothing to record)."""
        rewriter = attempt.rewriter
        failed = rewriter is not None and rewriter.failed
        record["outcome"] = "failed_midstream" if failed else "ok"
        if attempt.metadata is None or failed:
            return None
        state["metadata"] = attempt.metadata
        ttft = None
        if attempt.mode == "sse" and attempt.t_first is not None:
            ttft = (attempt.t_first - attempt.t_start) * 1000
        if type(self.stats) is not InMemoryStats:
            return ttft, attempt.tps
        try:  # its record() only calls add(): no coroutine for it
            self.stats._add_sample(attempt.route.key, ttft, attempt.tps)
        except Exception as exc:  # advisory
            logger.warning("akgate routing stats: record failed (%s)", type(exc).__name__)
        return None

    async def _record_stats(self, attempt: Attempt, ttft: float | None, tps: float | None) -> None:
        try:
            key = attempt.route.key  # (provider, model)
            await self.stats.record(key[0], key[1], ttft_ms=ttft, tps=tps)
        except Exception as exc:  # advisory
            logger.warning("akgate routing stats: record failed (%s)", type(exc).__name__)


def _ranks_nothing(needs: Needs) -> bool:
    """Whether ``needs`` leaves every route of a model in (``rank_routes``' own shortcut)."""
    return not (needs.tools or needs.vision or needs.files or needs.structured or needs.effort)


def _provider_scope(
    scope: Scope, body: bytes, child: RequestContext, dropped: frozenset[bytes]
) -> Scope:
    """One attempt's scope: the client's, with ``body``'s length and the attempt's context
    (``scope_with_body`` and a key-stripping copy in one pass and one copy)."""
    headers = [h for h in scope.get("headers", ()) if h[0] not in dropped]
    headers.append((b"content-length", str(len(body)).encode("latin-1")))
    return {**scope, "headers": headers, SCOPE_KEY: child}


async def _call_provider(
    app: ASGIApp, scope: Scope, body: bytes, attempt: Attempt, cancel: CallScope | None
) -> None:
    """One provider call, in ``cancel`` when there is one; an exception is kept on the
    attempt (the provider app raising is a failed attempt, logged by the caller)."""
    if cancel is None:
        try:
            await app(scope, replay_receive(body, attempt.relay), attempt.send)
        except Exception as exc:
            attempt.exc = exc
        return
    with cancel:
        try:
            await app(scope, replay_receive(body, attempt.relay), attempt.send)
        except Exception as exc:
            attempt.exc = exc
