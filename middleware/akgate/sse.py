"""Incremental Server-Sent Events parser and encoder.

The parser follows the WHATWG event-stream rules: lines end in ``\\n``, ``\\r\\n`` or
``\\r`` (a ``\\r\\n`` split across two chunks counts once), ``data:`` lines join with ``\\n``,
lines starting with ``:`` are comments, a blank line dispatches the event, and an event with no
data is dropped. Chunk boundaries can fall anywhere, including inside a UTF-8 sequence.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

__all__ = ["SSEEvent", "SSEParser", "encode_comment", "encode_event"]


@dataclass(slots=True, frozen=True)
class SSEEvent:
    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None


class SSEParser:
    """Feed bytes with :meth:`feed`; complete events come back as they are dispatched."""

    __slots__ = ("_data", "_decoder", "_event", "_id", "_line", "_pending_cr", "_retry")

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._line: list[str] = []
        self._pending_cr = False
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        text = self._decoder.decode(chunk)
        events: list[SSEEvent] = []
        start = 0
        if self._pending_cr and text.startswith("\n"):
            start = 1  # the \n of a \r\n split across chunks
        self._pending_cr = False
        length = len(text)
        i = start
        while i < length:
            char = text[i]
            if char == "\n" or char == "\r":
                self._line.append(text[start:i])
                line = "".join(self._line)
                self._line.clear()
                if char == "\r":
                    if i + 1 < length:
                        if text[i + 1] == "\n":
                            i += 1
                    else:
                        self._pending_cr = True
                event = self._process_line(line)
                if event is not None:
                    events.append(event)
                start = i + 1
            i += 1
        if start < length:
            self._line.append(text[start:])
        return events

    def finish(self) -> list[SSEEvent]:
        """End of stream: an event without its closing blank line is discarded (per spec)."""
        self._decoder.decode(b"", final=True)
        self._line.clear()
        self._data.clear()
        self._event = None
        return []

    def _process_line(self, line: str) -> SSEEvent | None:
        if not line:
            if not self._data:
                self._event = None
                return None
            event = SSEEvent("\n".join(self._data), self._event, self._id, self._retry)
            self._data = []
            self._event = None
            self._retry = None
            return event
        if line[0] == ":":
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
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
