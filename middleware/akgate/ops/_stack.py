"""The operations layers in their order, and the log set-up ``akgate serve`` uses."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Literal

from akgate._types import ASGIApp

from ._accesslog import AccessLog, RequestIdFilter
from ._accesswriter import AccessLineHandler, LineFormatter
from ._combined import Operations
from ._health import HealthChecks

__all__ = ["configure_logging", "operations"]


def operations(
    app: ASGIApp,
    *,
    healthz_path: str | None = "/healthz",
    readyz_path: str | None = "/readyz",
    metrics_path: str | None = "/metrics",
    access_log: bool = True,
    log_format: Literal["text", "json"] = "text",
    tracing: bool | None = None,
) -> ASGIApp:
    """``app`` inside, outermost first: ``HealthChecks -> PrometheusMetrics -> Tracing ->
    AccessLog``. Probes and scrapes are answered first, so they are not logged, counted or
    traced. ``metrics_path`` needs ``prometheus-client``; ``tracing=None`` traces when
    ``opentelemetry-api`` is installed. Readiness checks are found in the stack below.
    Returned inside an :class:`~akgate.ops._combined.Operations` (``.app`` is the outermost
    layer), which serves the usual request through the four in one step.
    """
    stack: ASGIApp = app
    access = metrics = traces = None
    if access_log:
        stack = access = AccessLog(stack, format=log_format)
    if tracing is None:
        try:
            import opentelemetry.trace  # noqa: F401
        except ImportError:
            tracing = False
        else:
            tracing = True
    if tracing:
        from ._tracing import Tracing

        stack = traces = Tracing(stack)
    if metrics_path is not None:
        from ._metrics import PrometheusMetrics

        stack = metrics = PrometheusMetrics(stack, path=metrics_path)
    if healthz_path is not None or readyz_path is not None:
        stack = HealthChecks(stack, healthz_path=healthz_path, readyz_path=readyz_path)
    if stack is app:
        return app
    # The usual request crosses them in one step (the layers stay as they are, for the rest).
    own_paths = frozenset(p for p in (healthz_path, readyz_path, metrics_path) if p is not None)
    return Operations(
        stack, app, own_paths=own_paths, metrics=metrics, tracing=traces, access_log=access
    )


class _JSONFormatter(LineFormatter):
    """Non-access records as one JSON object per line (access lines are JSON already)."""

    def access_line(self, message: str, created: float) -> str:
        return message

    def format(self, record: logging.LogRecord) -> str:
        if record.name == "akgate.access":
            return record.getMessage()
        data: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", None),
            "message": record.getMessage(),
        }
        return json.dumps(data, separators=(",", ":"))


class _UTCFormatter(logging.Formatter):
    """UTC timestamps to the second, formatted once per second (every access line asks)."""

    def __init__(self, fmt: str, datefmt: str) -> None:
        super().__init__(fmt, datefmt=datefmt)
        self._stamp = (-1, "")  # one tuple: a thread never sees one second's text for another

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self._stamp_of(record.created, datefmt)

    def _stamp_of(self, created: float, datefmt: str | None = None) -> str:
        second = int(created)
        cached_second, stamp = self._stamp
        if second != cached_second:
            stamp = time.strftime(
                datefmt or self.datefmt or "%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)
            )
            self._stamp = (second, stamp)
        return stamp


class _AccessTextFormatter(_UTCFormatter, LineFormatter):
    """Access lines as ``<UTC time> <message>``."""

    def __init__(self, datefmt: str) -> None:
        super().__init__("%(asctime)s %(message)s", datefmt=datefmt)

    def access_line(self, message: str, created: float) -> str:
        return f"{self._stamp_of(created)} {message}"


def configure_logging(log_format: Literal["text", "json"] = "text") -> None:
    """Send ``akgate`` records (WARNING and up) to stderr and the access log to stdout, each with
    the request id (idempotent: an earlier configuration by this function is replaced)."""
    request_id = RequestIdFilter()
    utc = "%Y-%m-%dT%H:%M:%SZ"
    text = _UTCFormatter(
        "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s", datefmt=utc
    )
    formatter: logging.Formatter = _JSONFormatter() if log_format == "json" else text
    access_formatter: LineFormatter = (
        _JSONFormatter() if log_format == "json" else _AccessTextFormatter(utc)
    )
    # The access line already says what each request got: other records from WARNING up.
    for name, level in (("akgate", logging.WARNING), ("akgate.access", logging.INFO)):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if getattr(h, "_akgate", False)]:
            logger.removeHandler(old)
            old.flush()  # lines the access handler still holds
        handler: logging.Handler
        if name == "akgate.access":
            # Takes AccessLog's lines directly while this configuration stands (_accesswriter).
            handler = AccessLineHandler(sys.stdout, access_formatter, request_id, name)
        else:
            handler = logging.StreamHandler(sys.stderr)
            handler.addFilter(request_id)
            handler.setFormatter(formatter)
        handler._akgate = True  # type: ignore[union-attr]
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
