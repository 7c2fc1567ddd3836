"""``routing_metadata``: building it and attaching it to JSON bodies and SSE streams.

Streams are rewritten event by event without buffering. The per-chunk fast path only splits on
event boundaries and looks for a handful of byte markers (``[DONE]``, a non-null ``"usage"``,
``"error"``, terminal Responses events); only events carrying one are parsed. Chat streams end
with one chunk ``{"choices": [], "usage": ..., "routing_metadata": ...}`` before
``data: [DONE]``; Responses streams carry it in the terminal event's ``response``; Anthropic
Messages streams on the last ``message_delta`` event (next to its ``usage``).

An unfinished event is held until its blank line arrives, up to ``MAX_EVENT_SIZE`` bytes (16 MiB,
shared with :class:`~akgate.sse.SSEParser`): a provider that never ends an event gets the stream
ended with an explicit ``upstream_error`` event instead of growing the gateway's memory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from pydantic_core import from_json, to_json

from akgate._asgi import CR, LF
from akgate._faults import fault_payload, responses_error_event
from akgate.errors import anthropic_error_type, error_payload, status_for
from akgate.sse import MAX_EVENT_SIZE, SSEEventTooLarge, SSEParser, encode_event

from ._stream_check import BLOCK_STARTS, has_bad_block

__all__ = [
    "ChatStreamRewriter",
    "Finalize",
    "MessagesStreamRewriter",
    "ResponsesStreamRewriter",
    "inject_json",
    "merge_warnings",
]

#: Builds ``routing_metadata`` from the usage the provider reported (``None`` if it sent none).
Finalize = Callable[[Any], dict[str, Any]]

_DONE: Final = b"data: [DONE]\n\n"
_BLANK_DONE: Final = b"\n\n" + _DONE


def merge_warnings(*lists: list[dict[str, str]]) -> list[dict[str, str]]:
    """Concatenate warning lists, dropping repeats of the same ``(type, code)``."""
    seen: set[tuple[str, str]] = set()
    out: list[dict[str, str]] = []
    for warnings in lists:
        for w in warnings:
            key = (w["type"], w["code"])
            if key not in seen:
                seen.add(key)
                out.append(w)
    return out


def inject_json(
    body: bytes, finalize: Finalize, parsed: dict[str, Any] | None = None
) -> bytes | None:
    """Add ``routing_metadata`` to a chat completion or a Response object (``None``: not JSON).

    ``parsed``: ``body`` already parsed (it gets ``routing_metadata`` too)."""
    try:
        obj = from_json(body) if parsed is None else parsed
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    metadata = finalize(obj.get("usage"))
    end = body.rfind(b"}")
    if obj and "routing_metadata" not in obj and not body[end + 1 :].strip():
        # Splice before the closing brace instead of re-serialising the whole body (the object
        # has no such key of its own, so the spliced one is its only one).
        if parsed is not None:
            parsed["routing_metadata"] = metadata
        return body[:end] + b',"routing_metadata":' + to_json(metadata) + b"}"
    obj["routing_metadata"] = metadata
    return to_json(obj)


def _split_event(raw: bytes) -> tuple[str | None, str | None]:
    """``(event name, data)`` of one ``\\n``-delimited event block."""
    if raw.startswith(b"data: ") and LF not in raw:  # the usual one-line event
        return None, raw[6:].decode("utf-8", "replace")
    event: str | None = None
    data: list[str] = []
    for line in raw.decode("utf-8", "replace").split("\n"):
        if line.startswith("data:"):
            data.append(line[6:] if line.startswith("data: ") else line[5:])
        elif line.startswith("event:"):
            event = line[6:].lstrip(" ")
    return event, ("\n".join(data) if data else None)


class _StreamRewriter:
    """Event framing shared by both stream kinds; subclasses handle the interesting events."""

    _markers: tuple[bytes, ...] = ()

    def __init__(
        self, finalize: Finalize, provider: str, *, max_event_size: int = MAX_EVENT_SIZE
    ) -> None:
        self.finalize = finalize
        self.provider = provider
        self.max_event_size = max_event_size
        self.done = False
        self.failed = False
        #: True once the stream was cut for an oversized event: everything after is dropped.
        self.overflowed = False
        # An unfinished event; a bytearray so that a trickle of small chunks appends in place
        # (bytes concatenation would copy the whole pending part per chunk: quadratic).
        self._pending = bytearray()
        self._parser: SSEParser | None = None  # set once a \r shows up (slow, exact framing)
        #: Output of the feed in progress, event by event (only on the slow paths).
        self._batch: list[bytes] = []

    def feed(self, chunk: bytes) -> bytes:
        """Bytes to forward for this upstream chunk (complete events only)."""
        if self.overflowed:
            return b""
        # (``CR``, an int: see ``akgate._asgi.CR``; other searches use ``find``.)
        if self._parser is None and CR in chunk:
            self._parser = SSEParser(max_event_size=self.max_event_size)
            chunk = bytes(self._pending) + chunk
            self._pending = bytearray()
        if self._parser is not None:
            out = self._batch = []
            try:
                for e in self._parser.feed(chunk):
                    out.append(self._event(e.event, e.data, None))
            except SSEEventTooLarge:
                out.append(self._overflow())
            finally:
                self._batch = []
            return b"".join(out)
        pending = self._pending
        if pending:
            # Only the new bytes (and the one before them) can complete a blank line.
            start = len(pending) - 1
            pending += chunk
            cut = pending.rfind(b"\n\n", start)
            if cut < 0:
                return self._overflow() if len(pending) > self.max_event_size else b""
            data = bytes(pending)
            self._pending = bytearray()
        else:
            data = chunk
            cut = data.find(b"\n\n")
            if cut >= 0 and cut + 2 == len(data) and data.startswith(BLOCK_STARTS):
                # One event, its blank line ending the chunk (the usual token chunk): that blank
                # line is its only one, so its start is all the framing check looks at.
                return self._events(data, True)
            if cut >= 0:
                cut = data.rfind(b"\n\n", cut)
            if cut < 0:
                if len(data) > self.max_event_size:
                    return self._overflow()
                self._pending = bytearray(data)
                return b""
        if cut + 2 == len(data):  # the usual case: the chunk ends on an event boundary
            complete = data
        else:
            complete = data[: cut + 2]
            self._pending = bytearray(data[cut + 2 :])
            if len(self._pending) > self.max_event_size:
                self._pending = bytearray()
                return self._events(complete) + self._overflow()
        return self._events(complete)

    def feed_event(self, chunk: bytes, obj: dict[str, Any]) -> bytes:
        """``feed`` for a chunk that is exactly one ``data: <JSON object>`` event with its blank
        line, already parsed as ``obj`` (``_stream_check.single_json_event``): the same bytes
        out, without checking the framing or parsing the event again."""
        if self.overflowed or self.done or self._parser is not None or self._pending:
            return self.feed(chunk)
        if not self._needs_look(chunk):
            return chunk
        return self._object(None, obj, None, chunk)

    def _overflow(self) -> bytes:
        """End the stream: the provider sent an event larger than ``max_event_size``."""
        self._pending = bytearray()
        if self.done:
            self.overflowed = True
            return b""
        tail = self.abort(
            "upstream_error",
            f"The provider sent a stream event larger than {self.max_event_size} bytes.",
        )
        self.overflowed = True
        return tail

    def _events(self, complete: bytes, framed: bool = False) -> bytes:
        """Bytes to forward for ``complete`` (whole events; ``framed``: already found to be
        SSE, see ``feed``)."""
        if self.overflowed:
            return b""
        if not framed and has_bad_block(complete):
            # Text that is not SSE mid-stream: end with an error event, and stop the provider
            # the way an oversized event does.
            tail = (
                b""
                if self.done
                else self.abort("upstream_error", "The provider sent a malformed stream event.")
            )
            self.overflowed = True
            return tail
        if not self._needs_look(complete):
            return complete
        out = self._batch = []
        needs_look = self._needs_look
        try:
            for raw in complete.split(b"\n\n"):
                if not raw or raw == b"\n":
                    continue
                # (No marker holds a line break: searching the block without its blank line
                # finds what searching it with one does.)
                if needs_look(raw):
                    event, text = _split_event(raw)
                    out.append(self._event(event, text, raw + b"\n\n"))
                else:
                    out.append(raw + b"\n\n")
        finally:
            self._batch = []
        return b"".join(out)

    def _needs_look(self, complete: bytes) -> bool:
        # A plain loop: any() over a generator costs more than the searches on a short chunk.
        for marker in self._markers:  # noqa: SIM110
            if complete.find(marker) >= 0:
                return True
        return False

    def _event(self, event: str | None, data: str | None, raw: bytes | None) -> bytes:
        raise NotImplementedError

    def _object_or_forward(self, event: str | None, data: str, raw: bytes | None) -> bytes:
        """``_object`` for an event whose data is a JSON object; any other event passes on."""
        try:
            obj = from_json(data)
        except ValueError:
            return self._forward(event, data, raw)
        if not isinstance(obj, dict):
            return self._forward(event, data, raw)
        return self._object(event, obj, data, raw)

    def _object(
        self, event: str | None, obj: dict[str, Any], data: str | None, raw: bytes | None
    ) -> bytes:
        """An event whose data is the JSON object ``obj`` (``raw``: its block as it came, or
        ``None`` when it came through the exact parser, which gave ``data``)."""
        raise NotImplementedError

    @staticmethod
    def _forward(event: str | None, data: str | None, raw: bytes | None) -> bytes:
        """An event passed on unchanged (re-encoded when it came through the exact parser)."""
        return raw if raw is not None else encode_event(data or "", event)

    def close(self) -> bytes:
        """Bytes to send when the upstream body ended (a final chunk, or an explicit error)."""
        if not self._pending and self._parser is None and not self.overflowed:
            return self._close()  # the usual end: nothing held back (what the rest gives)
        tail = b""
        if not self.overflowed and (self._pending.strip() or self._parser is not None):
            # A last event without its blank line: be lenient (in either framing mode; the
            # exact parser keeps its partial line to itself).
            tail = self.feed(b"\n\n")
        self._pending = bytearray()
        # An oversized event already ended the stream with its own error event.
        return tail if self.overflowed else tail + self._close()

    def _close(self) -> bytes:
        raise NotImplementedError

    def abort(self, code: str, message: str) -> bytes:
        """An explicit error event ending the stream (the provider failed after the first byte)."""
        if self.overflowed:
            return b""  # already ended with its own error event
        self.failed = True
        return self._error(code, message)

    def _error(self, code: str, message: str) -> bytes:
        raise NotImplementedError


class ChatStreamRewriter(_StreamRewriter):
    """Chat Completions SSE: forces the final usage + routing_metadata chunk before [DONE]."""

    _markers = (b"[DONE]", b'"usage"', b'"error"')

    def __init__(
        self, finalize: Finalize, provider: str, *, max_event_size: int = MAX_EVENT_SIZE
    ) -> None:
        super().__init__(finalize, provider, max_event_size=max_event_size)
        #: The first chunk object parsed: its id/created/model head a final chunk that must be
        #: synthesised (the provider sent no usage chunk of its own). Read only then.
        self._head_source: dict[str, Any] | None = None
        #: The first event block, parsed for the head if no chunk was parsed at all.
        self._first: bytes | None = None
        self._usage: Any = None
        self._usage_chunk: dict[str, Any] | None = None
        #: The usage chunk's own bytes up to its closing brace, with ``,"routing_metadata":``
        #: appended, when the final chunk can be made by splicing (``_splice_head``).
        self._usage_head: bytes | None = None

    def _needs_look(self, complete: bytes) -> bool:
        if self._first is None and complete.find(b"data:") >= 0:
            self._first = complete  # not a keep-alive comment: it has the head fields
        if complete.find(b"[DONE]") >= 0 or complete.find(b'"error"') >= 0:
            return True
        # OpenAI-style streams repeat "usage":null on every chunk: only a real usage matters.
        # (One search per occurrence of the key, where counting it and both spellings of its
        # null took three passes over every chunk.)
        at = complete.find(b'"usage"')
        while at >= 0:
            after = at + 7
            if not (complete.startswith(b":null", after) or complete.startswith(b": null", after)):
                return True
            at = complete.find(b'"usage"', after)
        return False

    def _event(self, event: str | None, data: str | None, raw: bytes | None) -> bytes:
        if data is None or self.done:
            return b"" if self.done else self._forward(event, data, raw)
        if data == "[DONE]":
            return self._finish()
        return self._object_or_forward(event, data, raw)

    def _object(
        self, event: str | None, obj: dict[str, Any], data: str | None, raw: bytes | None
    ) -> bytes:
        if self._head_source is None:
            self._head_source = obj  # (its head fields are never rewritten)
        if obj.get("error"):
            self.failed = True
            # Whatever vocabulary the provider speaks, the client gets a registry code.
            obj["error"] = fault_payload(obj["error"], provider=self.provider)
            return encode_event(to_json(obj), event)
        usage = obj.get("usage")
        if usage is not None and (type(usage) is dict or isinstance(usage, Mapping)):
            self._usage = usage
            if not obj.get("choices"):
                self._usage_chunk = obj  # becomes the final chunk, with routing_metadata
                self._usage_head = _splice_head(obj, event, raw)
                return b""
            obj["usage"] = None  # reported once, on the final chunk
            return encode_event(to_json(obj), event)
        return self._forward(event, data, raw)

    def _finish(self) -> bytes:
        self.done = True
        if self.failed:
            return _DONE
        chunk = self._usage_chunk
        head = self._usage_head
        if head is not None and chunk is not None and chunk.get("usage") is self._usage:
            # The usual end: the provider's usage chunk as it came, routing_metadata spliced in
            # before its closing brace (what re-encoding the chunk with it says, in JSON terms,
            # for the cost of encoding the metadata alone).
            metadata = self.finalize(self._usage)
            return b"".join((head, to_json(metadata), b"}\n\n", _DONE))
        final = chunk or {**self._first_head(), "object": "chat.completion.chunk"}
        final["choices"] = []
        final["usage"] = self._usage
        final["routing_metadata"] = self.finalize(self._usage)
        return b"".join((b"data: ", to_json(final), _BLANK_DONE))

    def _first_head(self) -> dict[str, Any]:
        if self._head_source is not None:
            return _head(self._head_source)
        if self._first is not None:
            for raw in self._first.split(b"\n\n"):
                _, data = _split_event(raw)
                try:
                    obj = from_json(data) if data else None
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    return _head(obj)
        return {}

    def _close(self) -> bytes:
        if self.done:
            return b""
        if self.failed:
            self.done = True
            return _DONE
        if self._usage is not None:  # complete, just no [DONE]
            return self._finish()
        return self.abort("upstream_error", "The provider stream ended before it completed.")

    def _error(self, code: str, message: str) -> bytes:
        self.done = True
        payload = error_payload(code, message, provider=self.provider)
        return b"data: " + to_json({"error": payload}) + b"\n\n" + _DONE


def _splice_head(obj: dict[str, Any], event: str | None, raw: bytes | None) -> bytes | None:
    """For a usage chunk ``obj`` that came as the one-line event ``raw``: its JSON text without
    the closing brace, followed by ``,"routing_metadata":``, when that text plus the metadata
    and a brace is the final chunk ``_finish`` would encode (``choices`` already ``[]``, no
    ``routing_metadata`` of its own); else ``None``."""
    if raw is None or event is not None or "routing_metadata" in obj:
        return None
    choices = obj.get("choices")
    if type(choices) is not list or choices:
        return None  # missing or null: _finish adds "choices": [], which changes the object
    text = raw.rstrip()
    if not text.startswith(b"data: ") or LF in text or not text.endswith(b"}"):
        return None
    return text[:-1] + b',"routing_metadata":'


def _head(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: obj[k] for k in ("id", "object", "created", "model") if k in obj}


_TERMINAL_OK: Final = ("response.completed", "response.incomplete")


class ResponsesStreamRewriter(_StreamRewriter):
    """Responses SSE: routing_metadata rides in the terminal event's ``response``.

    A stream that breaks (the provider fails, sends a lone ``error`` event, or just stops) always
    ends with ``error`` then ``response.failed``, numbered after the last event the client got.
    """

    _markers = (
        b'"response.completed"',
        b'"response.incomplete"',
        b'"response.failed"',
        b'"type":"error"',
        b'"type": "error"',
        b"event: error",
        # Parsed once per stream / once per item (never per token), for response.failed:
        b'"response.created"',
        b'"response.output_item.done"',
    )

    def __init__(
        self, finalize: Finalize, provider: str, *, max_event_size: int = MAX_EVENT_SIZE
    ) -> None:
        super().__init__(finalize, provider, max_event_size=max_event_size)
        self._response: dict[str, Any] | None = None
        self._items: list[Any] = []
        self._sent = b""  # the last bytes forwarded: the latest sequence_number is in there
        self._upstream_error: dict[str, Any] | None = None

    def feed(self, chunk: bytes) -> bytes:
        out = super().feed(chunk)
        if out.find(b'"sequence_number"') >= 0:  # not just a keep-alive comment
            self._sent = out
        return out

    def feed_event(self, chunk: bytes, obj: dict[str, Any]) -> bytes:
        out = super().feed_event(chunk, obj)
        if out.find(b'"sequence_number"') >= 0:
            self._sent = out
        return out

    def _event(self, event: str | None, data: str | None, raw: bytes | None) -> bytes:
        if data is None or data == "[DONE]":
            return self._forward(event, data, raw)
        return self._object_or_forward(event, data, raw)

    def _object(
        self, event: str | None, obj: dict[str, Any], data: str | None, raw: bytes | None
    ) -> bytes:
        kind = obj.get("type")
        if kind in _TERMINAL_OK and isinstance(obj.get("response"), dict):
            response = obj["response"]
            response["routing_metadata"] = self.finalize(response.get("usage"))
            self.done = True
            return encode_event(to_json(obj), event)
        if kind == "response.created" and isinstance(obj.get("response"), dict):
            self._response = obj["response"]
        elif kind == "response.output_item.done":
            self._items.append(obj.get("item"))
        elif kind == "response.failed":
            self.failed = self.done = True
            response = obj.get("response")
            if isinstance(response, dict) and response.get("error") is not None:
                response["error"] = fault_payload(response["error"], provider=self.provider)
                return encode_event(to_json(obj), event)
        elif kind == "error":
            self.failed = True
            error = obj.get("error")
            nested: dict[str, Any] = error if isinstance(error, dict) else {}
            # The flat fields win; the nested object fills in (its `type` is the error's type).
            flat = {k: v for k, v in obj.items() if k not in ("type", "error") and v is not None}
            payload = fault_payload({**nested, **flat}, provider=self.provider)
            self._upstream_error = payload
            sequence = obj.get("sequence_number")
            if not isinstance(sequence, int):
                sequence = self._last_sequence() + 1
            # One code per fault, in the registry's vocabulary (flat and nested alike).
            return encode_event(to_json(responses_error_event(payload, sequence)), event or "error")
        return self._forward(event, data, raw)

    def _last_sequence(self) -> int:
        # Events already handled in the feed in progress come after those of ``_sent``.
        for sent in (*reversed(self._batch), self._sent):
            numbers = _SEQUENCE.findall(sent)
            if numbers:
                return int(numbers[-1])
        return -1

    def _close(self) -> bytes:
        if self.done:
            return b""
        if self.failed and self._upstream_error is not None:
            # The provider sent an error event but no response.failed: finish the stream.
            self.done = True
            return self._failed(self._upstream_error, self._last_sequence() + 1)
        return self.abort("upstream_error", "The provider stream ended before it completed.")

    def _error(self, code: str, message: str) -> bytes:
        self.done = True
        sequence = self._last_sequence() + 1
        payload = error_payload(code, message, provider=self.provider)
        event = responses_error_event(payload, sequence)
        return encode_event(to_json(event), "error") + self._failed(payload, sequence + 1)

    def _failed(self, payload: dict[str, Any], sequence: int) -> bytes:
        response: dict[str, Any] = dict(self._response or {"object": "response"})
        # The failed Response carries the error event's payload: one code per fault.
        response.update(
            status="failed",
            error=payload,
            output=[item for item in self._items if isinstance(item, dict)],
            usage=None,
        )
        event = {"type": "response.failed", "sequence_number": sequence, "response": response}
        return encode_event(to_json(event), "response.failed")


_SEQUENCE: Final = re.compile(rb'"sequence_number":\s*(\d+)')


class MessagesStreamRewriter(_StreamRewriter):
    """Anthropic Messages SSE: routing_metadata rides on the ``message_delta`` event.

    ``message_start`` (once per stream) gives the input and cache counts that a ``message_delta``
    may leave out. A stream that breaks ends with one Anthropic ``error`` event (never a
    ``message_stop``), as the Anthropic API does after its 200.
    """

    _markers = (
        b'"message_start"',
        b'"message_delta"',
        b'"message_stop"',
        b"event: error",
        b'"type":"error"',
        b'"type": "error"',
    )

    def __init__(
        self, finalize: Finalize, provider: str, *, max_event_size: int = MAX_EVENT_SIZE
    ) -> None:
        super().__init__(finalize, provider, max_event_size=max_event_size)
        self._usage: dict[str, Any] = {}

    def _event(self, event: str | None, data: str | None, raw: bytes | None) -> bytes:
        if data is None or self.done:
            return b"" if self.done else self._forward(event, data, raw)
        return self._object_or_forward(event, data, raw)

    def _object(
        self, event: str | None, obj: dict[str, Any], data: str | None, raw: bytes | None
    ) -> bytes:
        kind = obj.get("type")
        if kind == "message_start":
            message = obj.get("message")
            usage = message.get("usage") if isinstance(message, dict) else None
            if isinstance(usage, dict):
                self._usage.update(usage)
        elif kind == "message_delta":
            usage = obj.get("usage")
            if isinstance(usage, dict):
                self._usage.update({k: v for k, v in usage.items() if v is not None})
            obj["routing_metadata"] = self.finalize(self._usage)
            return encode_event(to_json(obj), event or "message_delta")
        elif kind == "message_stop":
            self.done = True
        elif kind == "error":
            self.failed = self.done = True
        return self._forward(event, data, raw)

    def _close(self) -> bytes:
        if self.done:
            return b""
        return self.abort("upstream_error", "The provider stream ended before it completed.")

    def _error(self, code: str, message: str) -> bytes:
        self.done = True
        status = status_for(code)
        event = {
            "type": "error",
            "error": {"type": anthropic_error_type(status), "message": message},
        }
        return encode_event(to_json(event), "error")
