"""``AccessLog``: one structured line per request, and the request id on every log record."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any, Final, Literal

from akgate._asgi import route_path
from akgate._types import ASGIApp, Receive, Scope, Send
from akgate.context import current_request_id

from ._accesswriter import direct_handler
from ._observe import Observation, answered, observed_request, release

__all__ = ["AccessLog", "RequestIdFilter", "access_fields"]

_MAX_PATH: Final = 200
#: ``json.dumps(..., separators=(",", ":"))`` builds this encoder anew on every call.
_JSON: Final = json.JSONEncoder(separators=(",", ":"))


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (the current request's ``X-Request-ID``, ``-`` outside one) to
    every record a handler sees, so a format can say ``%(request_id)s``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id() or "-"
        return True


def access_fields(obs: Observation) -> dict[str, Any]:
    """The access-log fields of one finished request (never a secret: the key id only)."""
    ctx = obs.ctx
    identity = ctx.identity
    model, provider, tokens, cost, fallbacks = answered(obs)
    ttft = obs.ttft
    return {
        "request_id": ctx.request_id,
        "key_id": identity.key_id if identity is not None else None,
        "workspace": identity.workspace_id if identity is not None else None,
        "method": obs.method,
        "path": obs.path[:_MAX_PATH],
        "endpoint": obs.endpoint,
        "model": model,
        "provider": provider,
        "status": obs.status,
        "error": obs.error_code,
        "stream": obs.stream,
        "input_tokens": tokens[0] if tokens is not None else None,
        "output_tokens": tokens[1] if tokens is not None else None,
        "cost_usd": cost,
        "fallbacks": fallbacks,
        "ttft_ms": round(ttft * 1000, 1) if ttft is not None else None,
        "duration_ms": round(obs.duration * 1000, 1),
    }


#: The text line's ``name=value`` fields, in order; each is left out when ``None``.
_TEXT_FIELDS: Final = (
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
)


#: What a client could use to break or forge a text line: the path is percent-decoded and the
#: requested model is any JSON string, so either may hold a line break (also the ones some log
#: viewers break at: NEL, U+2028, U+2029) or a terminal escape; and the backslash, so that an
#: escape in the line always means one.
_UNSAFE: Final = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029\\]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _text(fields: dict[str, Any]) -> str:
    """``<request id> <method> <path> <status>`` then ``name=value`` for each field that is set
    (``fallbacks`` only when there were some); control characters and backslashes written as
    ``\\xNN`` (``\\uNNNN``), as nginx does, so that one request is always one line."""
    parts = [f"{fields['request_id']} {fields['method']} {fields['path']} {fields['status']}"]
    for name in _TEXT_FIELDS:
        value = fields[name]
        if value is not None and not (name == "fallbacks" and value == 0):
            parts.append(f"{name}={value}")
    return _safe(" ".join(parts))


def _safe(line: str) -> str:
    """``line`` with what could break or forge it escaped (see ``_UNSAFE``)."""
    # Every character _UNSAFE matches but the backslash is unprintable (Cc, Zl, Zp): a printable
    # line without a backslash, the usual one, is returned without the pattern's search.
    if line.isprintable() and "\\" not in line:
        return line
    return _UNSAFE.sub(_escape, line) if _UNSAFE.search(line) else line


def access_text(obs: Observation) -> str:
    """``_text(access_fields(obs))``, built without the fields' dict: the text line of
    ``akgate serve``'s own logging configuration, written for every request."""
    ctx = obs.ctx
    identity = ctx.identity
    model, provider, tokens, cost, fallbacks = answered(obs)
    line = f"{ctx.request_id} {obs.method} {obs.path[:_MAX_PATH]} {obs.status}"
    if identity is not None:
        key_id = identity.key_id
        workspace = identity.workspace_id
        if key_id is not None:
            line += f" key_id={key_id}"
        if workspace is not None:
            line += f" workspace={workspace}"
    line += f" endpoint={obs.endpoint}"
    if model is not None:
        line += f" model={model}"
    if provider is not None:
        line += f" provider={provider}"
    error = obs.error_code
    if error is not None:
        line += f" error={error}"
    if tokens is not None:
        line += f" input_tokens={tokens[0]} output_tokens={tokens[1]}"
    if cost is not None:
        line += f" cost_usd={cost}"
    if fallbacks != 0:
        line += f" fallbacks={fallbacks}"
    ttft = obs.ttft
    if ttft is not None:
        line += f" ttft_ms={round(ttft * 1000, 1)}"
    line += f" duration_ms={round(obs.duration * 1000, 1)}"
    return _safe(line)


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
        original = send
        scope, send, ctx, obs = observed_request(scope, send)
        try:
            try:
                await self.app(scope, receive, send)
            except BaseException as exc:
                obs.finish(exc)
                self._log(obs)
                raise
            obs.finish()
            self._log(obs)
        finally:
            if send is not original:  # this layer made the observation
                release(ctx, obs)

    def _log(self, obs: Observation) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        handler = direct_handler(logger)
        if handler is not None:  # akgate serve's own configuration: the same line, no record
            now = time.time()
            if self.format == "json":
                message = _JSON.encode({"ts": round(now, 3), **access_fields(obs)})
            else:  # built without the fields' dict
                message = access_text(obs)
            handler.write_line(message, now)
            return
        fields = access_fields(obs)
        now = time.time()
        if self.format == "json":
            message = _JSON.encode({"ts": round(now, 3), **fields})
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
