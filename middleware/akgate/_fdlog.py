"""Log file-descriptor exhaustion once, not once per accept retry.

When a server runs out of file descriptors, asyncio's accept loop logs an error with a traceback
every time it retries (each second, per listening socket), and a flood of half-open connections
turned that into gigabytes of log in a minute. This filter lets the first such record through
with a hint, then at most one summary per ``interval`` seconds with the number suppressed.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable
from typing import Final

__all__ = ["FdExhaustionFilter", "install_fd_exhaustion_filter"]

_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE})
_HINT: Final = (
    "out of file descriptors (too many open connections): new connections wait until some "
    "close. Raise `ulimit -n`, cap connections with --limit-concurrency, and keep "
    "--body-timeout / --timeout-keep-alive short (see docs/security.md#slow-clients)"
)


def _is_fd_exhaustion(record: logging.LogRecord) -> bool:
    exc = record.exc_info[1] if record.exc_info else None
    if isinstance(exc, OSError) and exc.errno in _ERRNOS:
        return True
    return "Too many open files" in record.getMessage()


class FdExhaustionFilter(logging.Filter):
    """Pass the first fd-exhaustion record (rewritten, without traceback), then one summary per
    ``interval`` seconds; other records pass unchanged."""

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._last: float | None = None
        self._suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not _is_fd_exhaustion(record):
            return True
        now = self.clock()
        if self._last is not None and now - self._last < self.interval:
            self._suppressed += 1
            return False
        suffix = f" ({self._suppressed} more since the last report)" if self._suppressed else ""
        self._last, self._suppressed = now, 0
        record.msg, record.args = "akgate: %s%s", (_HINT, suffix)
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.ERROR, "ERROR"
        return True


def install_fd_exhaustion_filter(interval: float = 60.0) -> FdExhaustionFilter:
    """Attach one filter to the loggers that report accept failures (asyncio, uvicorn)."""
    fd_filter = FdExhaustionFilter(interval)
    for name in ("asyncio", "uvicorn.error"):
        logging.getLogger(name).addFilter(fd_filter)
    return fd_filter
