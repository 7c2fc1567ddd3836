"""akgate: composable pure-ASGI middleware for Auriko-compatible LLM gateway endpoints.

The layers, outermost first: :class:`APIKeyAuth`, :class:`RequestValidation`, :class:`Routing`,
:class:`ResponsesAdapter`. :func:`gateway` (or the :class:`Gateway` middleware class) stacks them.
"""

from __future__ import annotations

from ._body_timeout import RequestBodyTimeout
from ._keepalive import SSEKeepAlive
from ._version import __version__
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
    CatalogProvider,
    InMemoryStats,
    Provider,
    RedisStats,
    Routing,
    RoutingStats,
)
from .stack import Gateway, GatewayApp, gateway
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

__all__ = [
    "ERROR_CODES",
    "APIKeyAuth",
    "AccessLog",
    "AdapterOptions",
    "Budget",
    "Capabilities",
    "Catalog",
    "CatalogModel",
    "CatalogProvider",
    "DemoModel",
    "Gateway",
    "GatewayApp",
    "GatewayError",
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

# Public names report the package as their module, so reprs and docs say ``akgate.Routing``.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) or callable(_obj):
        try:
            _obj.__module__ = "akgate"
        except (AttributeError, TypeError):  # pragma: no cover - builtins and the like
            pass
