"""Operations: health and readiness, a structured access log, Prometheus metrics, OpenTelemetry
traces. Each is a pure-ASGI layer to put around the gateway (``akgate serve`` adds them all)::

    app = HealthChecks(PrometheusMetrics(Tracing(AccessLog(akgate.gateway(my_app, ...)))))

See ``docs/operations.md``.
"""

from __future__ import annotations

from ._accesslog import AccessLog, RequestIdFilter, access_fields
from ._health import Check, HealthChecks, discover_checks, key_store_check, tcp_check
from ._metrics import PrometheusMetrics
from ._tracing import Tracing

__all__ = [
    "AccessLog",
    "Check",
    "HealthChecks",
    "PrometheusMetrics",
    "RequestIdFilter",
    "Tracing",
    "access_fields",
    "discover_checks",
    "key_store_check",
    "tcp_check",
]
