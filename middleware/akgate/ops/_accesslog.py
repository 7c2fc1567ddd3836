"""``AccessLog``: one structured line per request, and the request id on every log record."""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Final, Literal

from akgate._asgi import route_path
from akgate._types import ASGIApp, Receive, Scope, Send
from akgate.context import current_request_id, request_context

from ._observe import Observation, observe

__all__ = ["AccessLog", "RequestIdFilter", "access_fields"]

_MAX_PATH: Final = 200


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (the current request's ``X-Request-ID``, ``-`` outside one) to
    every record a handler sees, so a format can say ``%(request_id)s``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id() or "-"
        return True


def access_fields(obs: Observation) -> dict[str, Any]:
    """The access-log fields of one finished request (never a secret: the key id only)."""
    tokens = obs.tokens
    ttft = obs.ttft
    return {
        "request_id": obs.ctx.request_id,
        "key_id": obs.key_id,
        "workspace": obs.workspace,
        "method": obs.method,
        "path": obs.path[:_MAX_PATH],
        "endpoint": obs.endpoint,
        "model": obs.model,
        "provider": obs.provider,
        "status": obs.status,
        "error": obs.error_code,
        "stream": obs.stream,
        "input_tokens": tokens[0] if tokens else None,
        "output_tokens": tokens[1] if tokens else None,
        "cost_usd": obs.cost,
        "fallbacks": obs.fallbacks,
        "ttft_ms": round(ttft * 1000, 1) if ttft is not None else None,
        "duration_ms": round(obs.duration * 1000, 1),
    }


def _text(fields: dict[str, Any]) -> str:
    head = f"{fields['request_id']} {fields['method']} {fields['path']} {fields['status']}"
    parts = [head]
    for name in (
        "key_id",
        "workspace",
        "endpoint",
        "model",
        "provider",
        "error",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "fallbacks",
        "ttft_ms",
        "duration_ms",
    ):
        value = fields[name]
        if value is not None and not (name == "fallbacks" and value == 0):
            parts.append(f"{name}={value}")
    return " ".join(parts)


class AccessLog:
    """Log one line per HTTP request on ``logger`` (default ``akgate.access``) at INFO.

    ``format="text"``: ``req_… POST /v1/chat/completions 200 key_id=ak_live_… model=… …``;
    ``format="json"``: one JSON object per line with every field of :func:`access_fields` and a
    ``ts`` (Unix time). The fields also travel as ``record.akgate`` for your own formatter.

    Options (keyword-only):

    * ``format``: ``"text"`` (default) or ``"json"``.
    * ``logger``: the logger or its name (default ``akgate.access``).
    * ``skip_paths``: paths not logged (health probes, say).

    See ``docs/operations.md``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        format: Literal["text", "json"] = "text",
        logger: logging.Logger | str = "akgate.access",
        skip_paths: tuple[str, ...] = (),
    ) -> None:
        if format not in ("text", "json"):
            raise ValueError("format must be 'text' or 'json'")
        self.app = app
        self.format = format
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.skip_paths = frozenset(skip_paths)

    def __repr__(self) -> str:
        return f"AccessLog({self.app!r}, format={self.format!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.skip_paths and route_path(scope) in self.skip_paths):
            await self.app(scope, receive, send)
            return
        scope, send, ctx = request_context(scope, send)
        obs, send = observe(scope, send, ctx)
        try:
            await self.app(scope, receive, send)
        except BaseException as exc:
            obs.finish(exc)
            self._log(obs)
            raise
        obs.finish()
        self._log(obs)

    def _log(self, obs: Observation) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        fields = access_fields(obs)
        if self.format == "json":
            message = json.dumps({"ts": round(time.time(), 3), **fields}, separators=(",", ":"))
        else:
            message = _text(fields)
        # What logger.info() does, less its search of the stack for the caller (findCaller, a
        # few µs per line): the caller is always this method.
        record = logger.makeRecord(
            logger.name,
            logging.INFO,
            __file__,
            _LOG_LINE,
            message,
            (),
            None,
            "_log",
            {"akgate": fields, "request_id": fields["request_id"]},
        )
        logger.handle(record)


_LOG_LINE: Final = AccessLog._log.__code__.co_firstlineno
