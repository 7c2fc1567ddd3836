"""The access log's handler under ``akgate serve``: each line written without a ``LogRecord``,
and the lines of one event-loop turn written and flushed together.

Through ``logging`` every access line costs a ``LogRecord``, the logger's and the handler's
filters, a formatter and a ``flush()`` (a ``write`` system call) per request: ~10 µs, more
than building the line. When ``akgate.access`` is configured exactly as ``configure_logging``
left it (this handler alone, its own filter and formatter, no propagation, the standard record
factory), none of that can change what is written, so ``AccessLog`` hands the finished message
to :meth:`AccessLineHandler.write_line` instead. Any other configuration (a handler, filter or
level of the user's) goes through ``logging`` as before, and the lines still pending are written
first, so every line keeps its place.

Pending lines are written at the end of the event-loop turn (``loop.call_soon``; not by a thread:
a thread waiting for the GIL is woken by each of the loop's GIL releases and sleeps again, which
costs more than the write it would save), by ``flush()`` (``logging.shutdown`` calls it at exit)
and before any record this handler formats itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import weakref
from collections import deque
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    _StreamHandler = logging.StreamHandler[TextIO]
else:  # not subscriptable at run time before Python 3.11
    _StreamHandler = logging.StreamHandler

__all__ = ["AccessLineHandler", "LineFormatter", "direct_handler"]


class LineFormatter(logging.Formatter):
    """A formatter that can also build its output for an access message without a record."""

    def access_line(self, message: str, created: float) -> str:
        """What :meth:`format` returns for an ``INFO`` record of ``akgate.access`` whose message
        is ``message`` (no arguments, no exception) made at ``created`` (Unix time)."""
        raise NotImplementedError


class AccessLineHandler(_StreamHandler):
    """``akgate serve``'s handler of ``akgate.access``: a ``StreamHandler`` that also takes
    finished lines from ``AccessLog`` and writes them once per event-loop turn."""

    def __init__(
        self,
        stream: TextIO,
        formatter: LineFormatter,
        request_id: logging.Filter,
        logger_name: str = "akgate.access",
    ) -> None:
        super().__init__(stream)
        self.setFormatter(formatter)
        self.addFilter(request_id)
        self._line_formatter = formatter
        self._own_filters: list[object] = [request_id]
        self._logger_name = logger_name
        #: Lines not written yet; a deque, whose append and popleft are atomic: a thread that
        #: adds one while another writes never loses it.
        self._pending: deque[str] = deque()
        #: The loop whose next turn writes the pending lines (a loop closed before that turn,
        #: or another thread's loop, is not relied on: its lines go with the next flush).
        self._flush_loop: asyncio.AbstractEventLoop | None = None
        #: The thread that scheduled that flush (``threading.get_ident``).
        self._flush_thread = 0
        _HANDLERS.add(self)

    def writes_directly_for(self, logger: logging.Logger) -> bool:
        """Whether an ``INFO`` record of ``logger`` (enabled: the caller checked) would reach this
        handler alone, unchanged, and be formatted by its own formatter: then
        :meth:`write_line` writes the same bytes."""
        return (
            not logger.propagate
            and not logger.filters
            and logger.name == self._logger_name
            and type(logger) is logging.Logger
            and self.level <= logging.INFO
            and self.formatter is self._line_formatter
            and self.filters == self._own_filters
            and logging.getLogRecordFactory() is logging.LogRecord
        )

    def write_line(self, message: str, created: float) -> None:
        """Write the line ``message`` logged at ``created``, by the end of this event-loop turn
        (at once outside an asyncio loop)."""
        self._pending.append(self._line_formatter.access_line(message, created) + self.terminator)
        flush_loop = self._flush_loop
        if (
            flush_loop is not None
            and self._flush_thread == threading.get_ident()
            and flush_loop.is_running()
        ):
            # The flush this thread scheduled has not run, and the loop it is on still runs:
            # that is this thread's running loop (a thread runs one loop at a time), whose turn
            # ends with it. Known without get_running_loop(), which costs a getpid() system
            # call each time (it checks for a fork; a fork forgets the flush, see below).
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if flush_loop is not loop:
            self._flush_thread = threading.get_ident()
            self._flush_loop = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # Handler.__init__ made it
            self._flush_loop = None
            if self._pending:
                self._write_pending(flush=True)
            else:
                super().flush()

    def emit(self, record: logging.LogRecord) -> None:
        if self._pending:  # under the handler's lock (Handler.handle): the older lines first
            self._write_pending(flush=False)
        super().emit(record)

    def close(self) -> None:
        self.flush()
        super().close()

    def _write_pending(self, *, flush: bool) -> None:
        pending = self._pending
        count = len(pending)
        if count == 1:
            text = pending.popleft()
        else:
            popleft = pending.popleft
            text = "".join([popleft() for _ in range(count)])
        stream = self.stream
        try:
            stream.write(text)
            if flush:
                stream.flush()
        except Exception:
            # What StreamHandler.emit does with a failed write (e.g. a closed pipe).
            self.handleError(
                logging.makeLogRecord(
                    {
                        "name": self._logger_name,
                        "levelno": logging.INFO,
                        "levelname": "INFO",
                        "msg": text.rstrip("\n"),
                    }
                )
            )


#: The live handlers: a forked child forgets the flushes its parent's loop had scheduled (that
#: loop does not run in the child, though its copy says it is running).
_HANDLERS: weakref.WeakSet[AccessLineHandler] = weakref.WeakSet()


def _forget_scheduled_flushes() -> None:
    for handler in list(_HANDLERS):
        handler._flush_loop = None


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_forget_scheduled_flushes)


def direct_handler(logger: logging.Logger) -> AccessLineHandler | None:
    """``logger``'s :class:`AccessLineHandler` when it may take lines directly, else ``None``."""
    handlers = logger.handlers
    if len(handlers) != 1:
        return None
    handler = handlers[0]
    if type(handler) is AccessLineHandler and handler.writes_directly_for(logger):
        return handler
    return None
