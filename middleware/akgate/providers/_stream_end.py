"""What the upstream exchange reads of a stream it forwards: the events that may end it.

The exchange needs only the events that can end a stream or mark it failed (``[DONE]``, an error,
a terminal Responses or Messages event) and the bound on an event's size. Parsing every event of
every chunk to find them costs ~1 µs per chunk (decoding, splitting, an event object each); the
bytes of a run of whole events that holds none of those events' markers can be passed over
unparsed, as no event in it could have ended the stream (each marker is ASCII: it is in an
event's bytes whenever it is in its decoded text); of a run that holds a marker, only the events
that hold one are parsed.

:class:`StreamEnd` yields what ``SSEParser.feed`` yields of the events with a marker, and raises
``SSEEventTooLarge`` on the same chunk as the parser would. Whole events are those up to the last
``\\n\\n`` of what arrived; a stream that uses CR line ends is handed to an ``SSEParser`` for the
rest of it, as is an event that outgrows the size bound in bytes (then its characters may too).
"""

from __future__ import annotations

from typing import Final

from akgate._asgi import CR
from akgate.sse import MAX_EVENT_SIZE, SSEEvent, SSEParser

__all__ = ["MARKERS", "StreamEnd"]

#: Per stream kind of the exchange: bytes that every event able to end the stream contains.
MARKERS: Final[dict[str, tuple[bytes, ...]]] = {
    "chat": (b"[DONE]", b'{"error"'),
    "responses": (
        b"[DONE]",
        b"response.completed",
        b"response.incomplete",
        b"response.failed",
        b"error",
    ),
    "messages": (b"[DONE]", b"message_stop", b"error"),
}


class StreamEnd:
    """Feed it the stream's chunks; it returns the events that may end the stream."""

    __slots__ = ("_markers", "_max", "_parser", "_rest")

    def __init__(self, markers: tuple[bytes, ...], *, max_event_size: int = MAX_EVENT_SIZE) -> None:
        self._markers = markers
        self._max = max_event_size
        #: Bytes after the last whole event (the start of the next one).
        self._rest = bytearray()
        #: The parser that reads the stream from the hand-off on (``None``: not handed off).
        self._parser: SSEParser | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        parser = self._parser
        if parser is not None:
            return parser.feed(chunk)
        pending = self._rest
        if CR in chunk:
            return self._hand_off(pending + chunk)
        if chunk.find(b"\n\n") < 0 and not (chunk[:1] == b"\n" and pending[-1:] == b"\n"):
            # No event ended in this chunk: kept for the next (appended in place, so an event
            # that arrives in many small chunks costs no copy per chunk).
            pending += chunk
            if len(pending) > self._max:
                return self._hand_off(pending)
            return []
        data = bytes(pending) + chunk if pending else chunk
        end = data.rfind(b"\n\n") + 2
        whole = data[:end]
        rest = data[end:]
        self._rest = bytearray(rest)
        # A fresh parser reads whole events as the stream's own would: after a blank line it
        # holds no event, no partial line and no undecoded byte.
        if len(whole) > self._max:  # an event in it may be too large: all of it is read
            events = SSEParser(max_event_size=self._max).feed(whole)
        else:
            marked = self._marked(whole)
            events = SSEParser(max_event_size=self._max).feed(marked) if marked else []
        if len(rest) > self._max:
            events += self._hand_off(rest)
        return events

    def _marked(self, whole: bytes) -> bytes:
        """The events of ``whole`` (whole events) that hold a marker, in stream order."""
        spans: set[tuple[int, int]] = set()
        for marker in self._markers:
            at = whole.find(marker)
            while at != -1:
                # A marker holds no line end: its event runs from the blank line before it to
                # the one after it (``whole`` ends with one).
                start = whole.rfind(b"\n\n", 0, at)
                start = 0 if start < 0 else start + 2
                end = whole.find(b"\n\n", at) + 2
                spans.add((start, end))
                at = whole.find(marker, end)
        if not spans:
            return b""
        if len(spans) == 1:
            start, end = spans.pop()
            return whole[start:end]
        return b"".join(whole[start:end] for start, end in sorted(spans))

    def _hand_off(self, data: bytes | bytearray) -> list[SSEEvent]:
        self._rest = bytearray()
        parser = self._parser = SSEParser(max_event_size=self._max)
        return parser.feed(bytes(data))
