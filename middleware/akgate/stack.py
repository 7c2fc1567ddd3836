"""The composition helper: every akgate layer around an app, in the right order.

::

    app = akgate.gateway(app, models=["my-model"])          # a function: returns the stack
    app.add_middleware(akgate.Gateway, models=["my-model"])  # Starlette / FastAPI: one class

Both build, outermost first::

    APIKeyAuth -> RequestValidation -> Routing -> [ResponsesAdapter | MessagesAdapter ->] app

inside the returned :class:`GatewayApp`, which bounds the time a request body may take.

Routing treats the wrapped app as the provider ``"app"`` (serving the ``models`` you name, for
``ak_live_`` and ``ak_test_`` keys alike) next to the embedded demo model, and wraps it in the
adapters for ``/v1/responses`` and ``/v1/messages`` because it only speaks chat completions.
Every layer can be turned off or configured (``auth=False``, ``validation_options={...}`` ...);
see ``docs/frameworks.md``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, TypedDict, cast

from ._asgi import DEFAULT_MAX_BODY_SIZE
from ._body_timeout import DEFAULT_BODY_TIMEOUT, RequestBodyTimeout
from ._front import Front
from ._keepalive import SSEKeepAlive
from ._options import check_body_size
from ._pieces import piecewise
from ._types import ASGIApp, Message, Receive, Scope, Send
from .adapter import ResponsesAdapter
from .auth import (
    APIKeyAuth,
    KeyStore,
    MemoryKeyStore,
    RedisKeyStore,
    RedisRateLimiter,
    default_store,
)
from .messages import MessagesAdapter
from .routing import Catalog, Provider, RedisStats, Routing
from .validation import RequestValidation

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.11

    from .store import ResponseStore
    from .usage import SpendControl

__all__ = ["Gateway", "GatewayApp", "GatewayOptions", "gateway"]

logger = logging.getLogger("akgate")

#: Catalog keys that describe the model rather than the app's offering of it.
_MODEL_KEYS = frozenset({"aliases", "display_name", "created"})
_APP_CAPABILITIES: Mapping[str, bool] = {"vision": True, "files": True}

ModelsOption = Iterable[str] | Mapping[str, Mapping[str, Any]]
CatalogOption = Catalog | Mapping[str, Any] | str | os.PathLike[str] | None


def _key_store(keys: KeyStore | Iterable[str] | None, redis_url: str | None) -> KeyStore:
    if isinstance(keys, str):
        raise ValueError(
            "keys must be a key store or a list of full keys, not a string "
            "(for a SQLite file use keys=akgate.auth.SQLiteKeyStore(path))"
        )
    if keys is None:
        return RedisKeyStore(redis_url) if redis_url else default_store()
    if _is_key_store(keys):
        return cast(KeyStore, keys)
    return MemoryKeyStore.from_keys(list(cast("Iterable[str]", keys)))


def _is_key_store(keys: object) -> bool:
    """A store is anything with ``lookup``, the one method the layer calls: a team's own store
    written before the protocol grew ``update`` keeps working (only the CLI needs the rest)."""
    return callable(getattr(keys, "lookup", None))


def _app_models(models: ModelsOption, provider: str, *, responses: bool) -> list[dict[str, Any]]:
    """Catalog entries for the models the wrapped app serves (free unless priced)."""
    items: Iterable[tuple[str, Mapping[str, Any]]]
    if isinstance(models, str):
        raise ValueError("models must be a list of model ids (or a mapping), not a string")
    items = models.items() if isinstance(models, Mapping) else ((m, {}) for m in models)
    entries = []
    for model_id, options in items:
        offering: dict[str, Any] = {
            "name": provider,
            "input_price": 0.0,
            "output_price": 0.0,
            # The gateway cannot know what the app reads: images and files go through, and the
            # app answers them. Give ``capabilities`` to have the gateway refuse them up front.
            "capabilities": _APP_CAPABILITIES,
        }
        if not responses:
            offering["endpoints"] = ["chat_completions"]
        offering.update({k: v for k, v in options.items() if k not in _MODEL_KEYS})
        model = {k: v for k, v in options.items() if k in _MODEL_KEYS}
        entries.append({"id": model_id, **model, "providers": [offering]})
    return entries


def _catalog(
    catalog: CatalogOption, models: ModelsOption, provider: str, *, demo: bool, responses: bool
) -> Catalog:
    entries = _app_models(models, provider, responses=responses)
    if catalog is not None:
        base: Catalog | None = Catalog.load(catalog)
    else:
        base = Catalog.demo() if demo else None
    if not entries:
        if base is None:
            raise ValueError("nothing to route: name the app's models=[...] or give a catalog")
        return base
    extra = Catalog.from_dict({"models": entries}).models
    return Catalog([*(base.models if base is not None else ()), *extra])


class GatewayOptions(TypedDict, total=False):
    """The options of :func:`gateway` and :class:`Gateway`, all keyword and all optional (the
    defaults are in ``docs/frameworks.md``), written once here for both.

    :param keys: a :class:`~akgate.auth.KeyStore`, or a list of full API keys (held in memory).
        Default: ``$AKGATE_API_KEYS`` when set, else the SQLite store at
        ``$AKGATE_HOME/keys.sqlite3`` (``~/.akgate``), or Redis when ``redis_url`` is given.
    :param redis_url: share keys, rate limits and routing stats between workers through Redis.
    :param models: model ids the wrapped app serves (a mapping gives catalog fields per model,
        e.g. ``{"my-model": {"input_price": 0.5, "output_price": 1.5, "aliases": ["mine"]}}``).
    :param catalog: a :class:`~akgate.routing.Catalog`, a mapping or a JSON/TOML file; replaces
        the built-in demo catalog (``models`` are added to it).
    :param demo: include the embedded demo models (``demo``, ``demo-reasoning``) in the default
        catalog.
    :param providers: more :class:`~akgate.routing.Provider` objects (e.g. upstreams).
    :param app_provider: the wrapped app's provider name, or a full ``Provider`` (``app=None``).
        A name builds ``Provider(name, test=True)``: the app serves test keys too.
    :param auth, validation, routing, adapter: turn a layer off. Without routing the adapter
        wraps ``app`` directly; with routing, ``adapter=False`` keeps the app's models off
        ``/v1/responses``.
    :param max_body_size: the request body cap of every layer (413 above it).
    :param body_timeout: seconds a gateway request has, from its start, to deliver its whole body
        (408 ``request_timeout`` past it, see :class:`~akgate.RequestBodyTimeout`); ``None``: no
        limit.
    :param hosted_tools: hosted tools (``web_search``, ``mcp``, ...) on a provider that speaks
        chat only: ``"strict"`` answers 400 ``hosted_tool_not_supported``, ``"lenient"`` drops
        them with a ``routing_metadata.warnings`` entry each. Native ``/v1/responses`` (and
        ``/v1/messages``) providers always get them untouched. The Messages adapter applies
        the same policy to Anthropic server tools, ``mcp_servers`` and ``container``.
    :param auth_options, validation_options, routing_options, adapter_options: more keyword
        options for :class:`~akgate.APIKeyAuth`, :class:`~akgate.RequestValidation`,
        :class:`~akgate.Routing` and :class:`~akgate.ResponsesAdapter`.
    :param usage_db: add the spend layer with a usage ledger and spend limits in this SQLite
        file or PostgreSQL URL (``True``: ``$AKGATE_HOME/usage.sqlite3``); see
        ``docs/spend.md``.
    :param spend_options: add the spend layer with these options of
        :class:`~akgate.usage.SpendControl` (``ledger``, ``limits``, ``counters`` ...).
    :param response_store: a :class:`~akgate.store.ResponseStore` or its URL (``memory://``,
        ``sqlite:///path``, ``redis://...``): stateful Responses (``store``,
        ``previous_response_id``, item references, retrieval, cancel, background runs) through
        :class:`~akgate.store.StatefulResponses`, placed between auth and validation. Default
        ``None``: ``/v1/responses`` stays stateless.
    :param response_store_options: more keyword options for
        :class:`~akgate.store.StatefulResponses` (``default_store``, ``reasoning_keys`` ...).
    :param messages: serve Anthropic's ``/v1/messages`` (through :class:`~akgate.MessagesAdapter`
        for chat-only providers); ``messages_options`` are more options for that adapter.
    :param sse_heartbeat: idle seconds before a ``: keep-alive`` comment on a chat, Responses
        or Messages stream (:class:`~akgate.SSEKeepAlive`); ``None`` turns heartbeats off.
    :param inline_files: accept files sent inline on ``/v1/responses`` (``input_file`` with
        ``file_data``; ``file_url`` for native Responses providers) and pass them to chat
        providers as chat ``file`` parts, routed only to providers whose catalog entry says
        ``capabilities.files``. Default ``False``: 400 ``operation_not_allowed``, the
        stateless contract's answer. ``file_id`` is refused either way.
    """

    keys: KeyStore | Iterable[str] | None
    redis_url: str | None
    models: ModelsOption
    catalog: CatalogOption
    demo: bool
    providers: Iterable[Provider]
    app_provider: str | Provider
    auth: bool
    validation: bool
    routing: bool
    adapter: bool
    max_body_size: int
    body_timeout: float | None
    auth_options: Mapping[str, Any] | None
    validation_options: Mapping[str, Any] | None
    routing_options: Mapping[str, Any] | None
    adapter_options: Mapping[str, Any] | None
    usage_db: str | os.PathLike[str] | bool | None
    spend_options: Mapping[str, Any] | None
    response_store: ResponseStore | str | None
    response_store_options: Mapping[str, Any] | None
    messages: bool
    messages_options: Mapping[str, Any] | None
    hosted_tools: Literal["strict", "lenient"]
    sse_heartbeat: float | None
    inline_files: bool


#: The value of each option not given (every key of ``GatewayOptions``, checked by a test).
_DEFAULTS: Final[GatewayOptions] = {
    "keys": None,
    "redis_url": None,
    "models": (),
    "catalog": None,
    "demo": True,
    "providers": (),
    "app_provider": "app",
    "auth": True,
    "validation": True,
    "routing": True,
    "adapter": True,
    "max_body_size": DEFAULT_MAX_BODY_SIZE,
    "body_timeout": DEFAULT_BODY_TIMEOUT,
    "auth_options": None,
    "validation_options": None,
    "routing_options": None,
    "adapter_options": None,
    "usage_db": None,
    "spend_options": None,
    "response_store": None,
    "response_store_options": None,
    "messages": True,
    "messages_options": None,
    "hosted_tools": "strict",
    "sse_heartbeat": 15.0,
    "inline_files": False,
}


def gateway(app: ASGIApp, **options: Unpack[GatewayOptions]) -> ASGIApp:
    """Wrap ``app`` in auth, validation, routing and the Responses and Messages adapters.

    The options are those of :class:`GatewayOptions`.
    """
    unknown = options.keys() - GatewayOptions.__optional_keys__
    if unknown:
        # What a keyword-only signature would raise: the options are checked keys, not **any.
        raise TypeError(f"gateway() got an unexpected keyword argument {min(unknown)!r}")
    o: GatewayOptions = {**_DEFAULTS, **options}
    keys = o["keys"]
    redis_url = o["redis_url"]
    max_body_size = o["max_body_size"]
    hosted_tools = o["hosted_tools"]
    adapter = o["adapter"]
    adapter_options = o["adapter_options"]
    messages_options = o["messages_options"]
    check_body_size(max_body_size)
    if adapter_options and "store" in adapter_options:
        # Inside the stack the adapter sits below validation, which refuses stateful requests.
        raise ValueError("give the response store as gateway(response_store=...)")
    if hosted_tools not in ("strict", "lenient"):
        raise ValueError("hosted_tools must be 'strict' or 'lenient'")
    messages_config: dict[str, Any] = {
        "max_body_size": max_body_size,
        "hosted_tools": hosted_tools,
        **(messages_options or {}),
    }
    stack: ASGIApp = app
    store: KeyStore | None = None
    owned: list[_Closable] = []  # what this call creates, closed at lifespan shutdown
    if o["auth"]:
        store = _key_store(keys, redis_url)
        if not _is_key_store(keys):
            owned.append(store)
    elif keys is not None:
        raise ValueError("keys given but auth=False")

    routed_catalog: Catalog | None = None  # prices for the spend layer's estimates
    if o["routing"]:
        provider = o["app_provider"]
        if isinstance(provider, str):
            provider = Provider(provider, None, test=True)
        if provider.app is None and adapter_options and adapter:
            # Options for the adapter: wrap the app here, so routing calls it natively.
            provider = Provider(
                provider.name,
                ResponsesAdapter(
                    app,
                    max_body_size=max_body_size,
                    **{
                        "hosted_tools": hosted_tools,
                        "inline_files": o["inline_files"],
                        **adapter_options,
                    },
                ),
                endpoints=frozenset({"chat_completions", "responses"}),
                test=provider.test,
                byok=provider.byok,
                data_policy=provider.data_policy,
            )
        routing_kwargs: dict[str, Any] = {
            "max_body_size": max_body_size,
            "hosted_tools": hosted_tools,
            "inline_files": o["inline_files"],
            "messages_options": messages_config,
            **(o["routing_options"] or {}),
        }
        if not o["messages"]:
            routing_kwargs["messages_options"] = {**messages_config, "passthrough": True}
        if redis_url and "stats" not in routing_kwargs:
            client = store.client if isinstance(store, RedisKeyStore) else redis_url
            stats = RedisStats(client)
            owned.append(stats)  # closes its client only if it created it from the URL
            routing_kwargs["stats"] = stats
        if redis_url and "public_rate_limiter" not in routing_kwargs:
            # Workers share the public directory's per-address budget, as they share keys.
            if isinstance(store, RedisKeyStore):
                limiter = RedisRateLimiter(client=store.client, prefix="akgate:public:")
            else:
                limiter = RedisRateLimiter(redis_url, prefix="akgate:public:")
                owned.append(limiter)
            routing_kwargs["public_rate_limiter"] = limiter
        routed_catalog = _catalog(
            o["catalog"], o["models"], provider.name, demo=o["demo"], responses=adapter
        )
        stack = Routing(
            stack,
            catalog=routed_catalog,
            providers=o["providers"],
            app_provider=provider,
            **routing_kwargs,
        )
    else:
        if o["models"] or o["catalog"] is not None or o["providers"]:
            raise ValueError("models, catalog and providers need routing=True")
        if adapter:
            stack = ResponsesAdapter(
                stack,
                **{
                    "max_body_size": max_body_size,
                    "hosted_tools": hosted_tools,
                    "inline_files": o["inline_files"],
                    **(adapter_options or {}),
                },
            )
        if o["messages"]:
            stack = MessagesAdapter(stack, **messages_config)
    if o["validation"]:
        stack = RequestValidation(
            stack,
            **{
                "max_body_size": max_body_size,
                "inline_files": o["inline_files"],
                **(o["validation_options"] or {}),
            },
        )
    spend = None
    if o["usage_db"] or o["spend_options"] is not None:
        # Inside the stateful layer: it sees each inference the stateful layer runs (background
        # runs included) with the request it really sends (a previous_response_id expanded).
        spend = _spend_layer(
            stack, store, o["usage_db"], o["spend_options"], owned, max_body_size, routed_catalog
        )
        stack = spend
    if o["response_store"] is not None:
        from .store import StatefulResponses

        stateful = StatefulResponses(
            stack,
            store=o["response_store"],
            **{"max_body_size": max_body_size, **(o["response_store_options"] or {})},
        )
        # Closed first: its background runs stop before what they use (the ledger ...) closes.
        owned.insert(0, stateful)  # stops its background runs; closes a store it opened
        stack = stateful
    if store is not None:
        auth_kwargs: dict[str, Any] = {"max_body_size": max_body_size, **(o["auth_options"] or {})}
        if spend is not None:
            auth_kwargs.setdefault("me_extension", spend.me_extension)
        stack = APIKeyAuth(stack, store=store, **auth_kwargs)
    return GatewayApp(
        stack, owned, body_timeout=o["body_timeout"], sse_heartbeat=o["sse_heartbeat"]
    )


def _spend_layer(
    app: ASGIApp,
    store: KeyStore | None,
    usage_db: str | os.PathLike[str] | bool | None,
    spend_options: Mapping[str, Any] | None,
    owned: list[_Closable],
    max_body_size: int,
    catalog: Catalog | None,
) -> SpendControl:
    """The spend layer; what it creates here (ledger, usage file, counters) is owned."""
    from .usage import RedisSpendCounters, SpendControl, UsageLedger, open_usage_store

    options: dict[str, Any] = {"max_body_size": max_body_size, **(spend_options or {})}
    if usage_db:
        usage_store = open_usage_store(None if usage_db is True else usage_db)
        if "ledger" not in options:
            ledger = UsageLedger(usage_store)
            owned.append(ledger)  # closing it closes the store
            options["ledger"] = ledger
        else:
            owned.append(usage_store)
        options.setdefault("limits", usage_store)
    if "counters" not in options and isinstance(store, RedisKeyStore):
        options["counters"] = RedisSpendCounters(client=store.client)
    if catalog is not None:
        options.setdefault("catalog", catalog)
    return SpendControl(app, **options)


class _Closable(Protocol):
    async def aclose(self) -> None: ...


class GatewayApp:
    """What :func:`gateway` returns: the layered stack (``.app``, outermost layer first).

    It passes every scope through, lifespan included (HTTP requests through
    :class:`~akgate.RequestBodyTimeout` when ``body_timeout`` is set); once the wrapped app has
    completed its lifespan shutdown, it closes what :func:`gateway` created itself (the key
    store's connections, a Redis stats client). Objects you passed in (a key store, providers) stay
    yours to close. Without lifespan support, call :meth:`aclose` yourself.

    With ``sse_heartbeat``, HTTP requests go through :class:`~akgate.SSEKeepAlive` first (outside
    every layer, so no layer ever sees a heartbeat).
    """

    __slots__ = ("_entry", "_front", "app", "resources")

    def __init__(
        self,
        app: ASGIApp,
        resources: Iterable[_Closable] = (),
        *,
        body_timeout: float | None = None,
        sse_heartbeat: float | None = None,
    ) -> None:
        self.app = app
        self.resources = tuple(resources)
        entry: ASGIApp = app
        if sse_heartbeat is not None:
            entry = SSEKeepAlive(entry, interval=sse_heartbeat)
        # Outermost of all: the body-time bound covers every layer that reads the body.
        if body_timeout is not None:
            entry = RequestBodyTimeout(entry, timeout=body_timeout)
        self._entry = entry
        # Both: the common request crosses them (and the pieces) in one step (akgate._front);
        # held as a bound method, which is called without looking ``__call__`` up.
        self._front: ASGIApp | None = None
        if isinstance(entry, RequestBodyTimeout) and isinstance(entry.app, SSEKeepAlive):
            self._front = Front(entry, entry.app, piecewise).__call__

    def __repr__(self) -> str:
        return f"GatewayApp({self.app!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if self._front is not None:
                await self._front(scope, receive, send)
                return
            # Bounded pieces: a client that stops reading makes the server buffer ~one piece.
            await self._entry(scope, receive, piecewise(send))
            return
        if scope["type"] != "lifespan" or not self.resources:
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await self.aclose()
            await send(message)

        await self.app(scope, receive, send_closing)

    async def aclose(self) -> None:
        """Close what :func:`gateway` created (safe to call more than once)."""
        for resource in self.resources:
            try:
                await resource.aclose()
            except Exception as exc:  # shutdown goes on; the type is enough (URLs hold secrets)
                logger.warning(
                    "akgate: closing %s failed (%s)", type(resource).__name__, type(exc).__name__
                )


class Gateway:
    """:func:`gateway` as a middleware class, for ``app.add_middleware(akgate.Gateway, ...)``.

    Takes exactly the options of :func:`gateway` (:class:`GatewayOptions`). One
    ``add_middleware`` call adds every layer in the right order, so it does not matter where it
    sits among your other middleware (the layers only act on ``/v1/...`` HTTP requests and pass
    everything else through).
    """

    __slots__ = ("app", "stack")

    def __init__(self, app: ASGIApp, **options: Unpack[GatewayOptions]) -> None:
        self.app = app
        self.stack = gateway(app, **options)

    def __repr__(self) -> str:
        return f"Gateway({self.stack!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.stack(scope, receive, send)
