"""Incremental Server-Sent Events parser and encoder.

The parser follows the WHATWG event-stream rules: lines end in ``\\n``, ``\\r\\n`` or
``\\r`` (a ``\\r\\n`` split across two chunks counts once), ``data:`` lines join with ``\\n``,
lines starting with ``:`` are comments, a blank line dispatches the event, and an event with no
data is dropped. Chunk boundaries can fall anywhere, including inside a UTF-8 sequence.

The parser holds at most ``max_event_size`` characters (16 MiB by default) of an unfinished line
plus the ``data`` of the event being built: a stream that never ends a line or never dispatches an
event raises :class:`SSEEventTooLarge` instead of growing without bound. Callers turn it into an
explicit error event.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "MAX_EVENT_SIZE",
    "SSEEvent",
    "SSEEventTooLarge",
    "SSEParser",
    "encode_comment",
    "encode_event",
]

_LINE_END = re.compile(r"\r\n|\r|\n")

#: Default cap on one event (its unfinished line plus its ``data`` lines), in characters. Generous:
#: a Responses terminal event carries the whole response (images included).
MAX_EVENT_SIZE: Final = 16 * 1024 * 1024


class SSEEventTooLarge(ValueError):
    """A line or an event passed the parser's ``max_event_size``."""


@dataclass(slots=True, frozen=True)
class SSEEvent:
    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None


class SSEParser:
    """Feed bytes with :meth:`feed`; complete events come back as they are dispatched."""

    __slots__ = (
        "_data",
        "_data_size",
        "_decoder",
        "_event",
        "_id",
        "_line",
        "_line_size",
        "_pending_cr",
        "_retry",
        "max_event_size",
    )

    def __init__(self, *, max_event_size: int = MAX_EVENT_SIZE) -> None:
        if max_event_size <= 0:
            raise ValueError("max_event_size must be > 0")
        self.max_event_size = max_event_size
        self._line_size = 0
        self._data_size = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._line: list[str] = []
        self._pending_cr = False
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        text = self._decoder.decode(chunk)
        if self._pending_cr:
            self._pending_cr = False
            if text.startswith("\n"):
                text = text[1:]  # the \n of a \r\n split across chunks
        if not text:
            return []
        # str.split / re.split run in C: a per-character loop cost ~10 us per chat chunk.
        lines = _LINE_END.split(text) if "\r" in text else text.split("\n")
        # A trailing lone \r ends a line; a \n opening the next chunk belongs to it.
        self._pending_cr = text[-1] == "\r"
        last = lines.pop()
        events: list[SSEEvent] = []
        if lines:
            if self._line:
                self._line.append(lines[0])
                lines[0] = "".join(self._line)
                self._line.clear()
                self._line_size = 0
            for line in lines:
                if len(line) > self.max_event_size:
                    self._overflow()
                event = self._process_line(line)
                if event is not None:
                    events.append(event)
        if last:
            self._line.append(last)
            self._line_size += len(last)
            if self._line_size + self._data_size > self.max_event_size:
                self._overflow()
        return events

    def _overflow(self) -> None:
        # Drop what was held: the stream is broken, the caller ends it with an error event.
        self._line.clear()
        self._data.clear()
        self._line_size = self._data_size = 0
        raise SSEEventTooLarge(f"an SSE event is larger than {self.max_event_size} characters")

    def finish(self) -> list[SSEEvent]:
        """End of stream: an event without its closing blank line is discarded (per spec)."""
        self._decoder.decode(b"", final=True)
        self._line.clear()
        self._data.clear()
        self._line_size = self._data_size = 0
        self._event = None
        return []

    def _process_line(self, line: str) -> SSEEvent | None:
        if not line:
            if not self._data:
                self._event = None
                return None
            event = SSEEvent("\n".join(self._data), self._event, self._id, self._retry)
            self._data = []
            self._data_size = 0
            self._event = None
            self._retry = None
            return event
        if line[0] == ":":
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data_size += len(value) + 1
            if self._data_size > self.max_event_size:
                self._overflow()
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None


def encode_event(data: str | bytes, event: str | None = None) -> bytes:
    """Encode one event; multi-line ``data`` becomes several ``data:`` lines."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    parts = []
    if event is not None:
        parts.append(f"event: {event}\n")
    if "\n" in data or "\r" in data:
        for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
            parts.append(f"data: {line}\n")
    else:
        parts.append(f"data: {data}\n")
    parts.append("\n")
    return "".join(parts).encode("utf-8")


def encode_comment(text: str = "") -> bytes:
    """A comment line (``: text``), ignored by clients: used as a keep-alive."""
    return f": {text}\n\n".encode()
