"""One rule for an exception raised by an app akgate calls (the user's chat route, a provider).

It is logged once, at ERROR, with its traceback and the request id, so the user can find the bug;
the text is scrubbed first, because an exception message or a frame's source line may hold an API
key, a bearer token or a URL with credentials. The traceback is formatted here rather than passed
as ``exc_info``: a handler would format that itself, unscrubbed.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Final

__all__ = ["log_app_exception", "scrub"]

_REDACTED: Final = "[redacted]"
_SECRETS: Final = (
    # akgate keys (ak_live_/ak_test_ + 46 base62 characters; shorter runs are redacted too).
    re.compile(r"\bak_(?:live|test)_[A-Za-z0-9]{8,}"),
    # Common provider key shapes: sk-..., sk-proj-..., sk-ant-...
    re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"),
    # Authorization header values.
    re.compile(r"(?i)(?<=bearer )[^\s'\",]+"),
    # user:password@ in URLs.
    re.compile(r"(?<=://)[^/\s:@'\"]+:[^/\s@'\"]+(?=@)"),
    # key=..., token=..., api_key=... in query strings and reprs.
    re.compile(r"(?i)(?<=[?&\s(,])(?:api[_-]?key|key|token|secret|password)=[^&\s'\",)]+"),
)


def scrub(text: str) -> str:
    """``text`` with credentials replaced by ``[redacted]``."""
    for pattern in _SECRETS:
        text = pattern.sub(_REDACTED, text)
    return text


def log_app_exception(
    logger: logging.Logger, what: str, exc: BaseException, request_id: str | None
) -> None:
    """Log ``exc`` raised by ``what`` (e.g. ``"the app's chat route"``) once, at ERROR."""
    formatted = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    logger.error(
        "%s raised %s (request %s)\n%s",
        what,
        type(exc).__name__,
        request_id or "-",
        scrub(formatted).rstrip(),
        extra={"akgate_request_id": request_id},
    )
