"""akgate: composable pure-ASGI middleware for Auriko-compatible LLM gateway endpoints.

The layers, outermost first: :class:`APIKeyAuth`, :class:`RequestValidation`, :class:`Routing`,
:class:`ResponsesAdapter`. :func:`gateway` (or the :class:`Gateway` middleware class) stacks them.
"""

from __future__ import annotations

import typing

from ._lazy import lazy_exports
from ._version import __version__

if typing.TYPE_CHECKING:
    from ._body_timeout import RequestBodyTimeout
    from ._keepalive import SSEKeepAlive
    from .adapter import AdapterOptions, ResponsesAdapter
    from .auth import (
        APIKeyAuth,
        KeyRecord,
        KeyStore,
        KeyStoreUnavailable,
        MemoryKeyStore,
        MemoryRateLimiter,
        NewKey,
        RateLimiter,
        RedisKeyStore,
        RedisRateLimiter,
        SQLiteKeyStore,
        create_key,
        ensure_demo_key,
        open_key_store,
    )
    from .context import Identity, RequestContext, current_request_id, get_context
    from .errors import ERROR_CODES, GatewayError
    from .messages import MessagesAdapter
    from .ops import AccessLog, HealthChecks, PrometheusMetrics, RequestIdFilter, Tracing
    from .providers import DemoModel, UpstreamProvider
    from .routing import (
        Capabilities,
        Catalog,
        CatalogModel,
        InMemoryStats,
        Offering,
        Provider,
        RedisStats,
        Routing,
        RoutingStats,
    )
    from .stack import Gateway, GatewayApp, GatewayOptions, gateway
    from .store import (
        MemoryResponseStore,
        RedisResponseStore,
        ResponseStore,
        ResponseStoreUnavailable,
        SQLiteResponseStore,
        StatefulResponses,
        open_response_store,
    )
    from .usage import (
        Budget,
        Limits,
        MemoryLimitStore,
        MemorySpendCounters,
        PostgresUsageStore,
        RedisSpendCounters,
        SpendControl,
        SQLiteUsageStore,
        UsageLedger,
        UsageRecord,
    )
    from .validation import (
        RequestValidation,
        validate_chat_request,
        validate_request,
        validate_responses_request,
    )

# The layers import pydantic schemas, httpx and the stores: ``import akgate`` stays cheap (a CLI,
# a Django settings module, a test collector) and each name is imported on first use (PEP 562).
#: Public name -> the module that defines it.
_LAZY: dict[str, str] = {
    "RequestBodyTimeout": "._body_timeout",
    "SSEKeepAlive": "._keepalive",
    "AdapterOptions": ".adapter",
    "ResponsesAdapter": ".adapter",
    "APIKeyAuth": ".auth",
    "KeyRecord": ".auth",
    "KeyStore": ".auth",
    "KeyStoreUnavailable": ".auth",
    "MemoryKeyStore": ".auth",
    "MemoryRateLimiter": ".auth",
    "NewKey": ".auth",
    "RateLimiter": ".auth",
    "RedisKeyStore": ".auth",
    "RedisRateLimiter": ".auth",
    "SQLiteKeyStore": ".auth",
    "create_key": ".auth",
    "ensure_demo_key": ".auth",
    "open_key_store": ".auth",
    "Identity": ".context",
    "RequestContext": ".context",
    "current_request_id": ".context",
    "get_context": ".context",
    "ERROR_CODES": ".errors",
    "GatewayError": ".errors",
    "MessagesAdapter": ".messages",
    "AccessLog": ".ops",
    "HealthChecks": ".ops",
    "PrometheusMetrics": ".ops",
    "RequestIdFilter": ".ops",
    "Tracing": ".ops",
    "DemoModel": ".providers",
    "UpstreamProvider": ".providers",
    "Capabilities": ".routing",
    "Catalog": ".routing",
    "CatalogModel": ".routing",
    "InMemoryStats": ".routing",
    "Offering": ".routing",
    "Provider": ".routing",
    "RedisStats": ".routing",
    "Routing": ".routing",
    "RoutingStats": ".routing",
    "Gateway": ".stack",
    "GatewayApp": ".stack",
    "GatewayOptions": ".stack",
    "gateway": ".stack",
    "MemoryResponseStore": ".store",
    "RedisResponseStore": ".store",
    "ResponseStore": ".store",
    "ResponseStoreUnavailable": ".store",
    "SQLiteResponseStore": ".store",
    "StatefulResponses": ".store",
    "open_response_store": ".store",
    "Budget": ".usage",
    "Limits": ".usage",
    "MemoryLimitStore": ".usage",
    "MemorySpendCounters": ".usage",
    "PostgresUsageStore": ".usage",
    "RedisSpendCounters": ".usage",
    "SpendControl": ".usage",
    "SQLiteUsageStore": ".usage",
    "UsageLedger": ".usage",
    "UsageRecord": ".usage",
    "RequestValidation": ".validation",
    "validate_chat_request": ".validation",
    "validate_request": ".validation",
    "validate_responses_request": ".validation",
}

__all__ = [
    "ERROR_CODES",
    "APIKeyAuth",
    "AccessLog",
    "AdapterOptions",
    "Budget",
    "Capabilities",
    "Catalog",
    "CatalogModel",
    "DemoModel",
    "Gateway",
    "GatewayApp",
    "GatewayError",
    "GatewayOptions",
    "HealthChecks",
    "Identity",
    "InMemoryStats",
    "KeyRecord",
    "KeyStore",
    "KeyStoreUnavailable",
    "Limits",
    "MemoryKeyStore",
    "MemoryLimitStore",
    "MemoryRateLimiter",
    "MemoryResponseStore",
    "MemorySpendCounters",
    "MessagesAdapter",
    "NewKey",
    "Offering",
    "PostgresUsageStore",
    "PrometheusMetrics",
    "Provider",
    "RateLimiter",
    "RedisKeyStore",
    "RedisRateLimiter",
    "RedisResponseStore",
    "RedisSpendCounters",
    "RedisStats",
    "RequestBodyTimeout",
    "RequestContext",
    "RequestIdFilter",
    "RequestValidation",
    "ResponseStore",
    "ResponseStoreUnavailable",
    "ResponsesAdapter",
    "Routing",
    "RoutingStats",
    "SQLiteKeyStore",
    "SQLiteResponseStore",
    "SQLiteUsageStore",
    "SSEKeepAlive",
    "SpendControl",
    "StatefulResponses",
    "Tracing",
    "UpstreamProvider",
    "UsageLedger",
    "UsageRecord",
    "__version__",
    "create_key",
    "current_request_id",
    "ensure_demo_key",
    "gateway",
    "get_context",
    "open_key_store",
    "open_response_store",
    "validate_chat_request",
    "validate_request",
    "validate_responses_request",
]


def _publish(value: object) -> None:
    # Public names report the package as their module, so reprs and docs say ``akgate.Routing``.
    if isinstance(value, type) or callable(value):
        try:
            value.__module__ = "akgate"
        except (AttributeError, TypeError):  # pragma: no cover - builtins and the like
            pass


_lazy_getattr, __dir__ = lazy_exports(__name__, _LAZY, on_load=_publish)


def __getattr__(name: str) -> typing.Any:
    if name == "CatalogProvider":
        # The old name of Offering: still importable, with a warning (see the changelog); not
        # cached, so every use warns. ``akgate._deprecated`` is not imported for it: ``import
        # akgate`` stays cheap.
        import warnings

        warnings.warn(
            "akgate.CatalogProvider is deprecated and will be removed: it is called "
            "akgate.Offering now",
            DeprecationWarning,
            stacklevel=2,
        )
        name = "Offering"
    return _lazy_getattr(name)
