"""Reading the inner answer of one turn: the Response object's identity, and the terminal save.

The inner layers (routing, the adapter) mint their own response id and know nothing of the
store. :class:`ResponseCapture` wraps their ``send``: every lifecycle object (``response.created``
... ``response.completed``, or the JSON body) gets the turn's id and its ``store`` /
``background`` / ``previous_response_id``, so the id in ``response.created`` is the id in
``response.completed`` and the stored id. The terminal object is saved *before* it is forwarded:
once a client has seen ``response.completed``, the turn can be chained. Other events pass
unchanged, as they arrive (a chunk is forwarded byte for byte when it holds whole events and no
lifecycle event).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from pydantic_core import from_json, to_json

from akgate._asgi import find_header
from akgate._types import Message, Send
from akgate.adapter._answer import AnswerSlot
from akgate.sse import SSEEvent, SSEEventTooLarge, SSEParser, encode_event

__all__ = ["LIFECYCLE_EVENTS", "TERMINAL_EVENTS", "ResponseCapture", "Turn"]

logger = logging.getLogger("akgate.store")

TERMINAL_EVENTS: Final = frozenset({"response.completed", "response.failed", "response.incomplete"})
LIFECYCLE_EVENTS: Final = TERMINAL_EVENTS | {
    "response.created",
    "response.in_progress",
    "response.queued",
}
_INPUT_PARAM: Final = re.compile(r"^input\[(\d+)\](.*)$", re.S)
#: A chunk without a lifecycle event's name (as its ``event:`` line or its JSON ``type``) and
#: without a ``\u`` escape (that could spell one in the JSON, see :func:`_may_patch`) holds no
#: event the capture patches. One literal prefix: an alternation with the escape at its top
#: level was scanned at every offset (3 µs per text delta instead of 1).
_LIFECYCLE_NAME: Final = re.compile(
    rb"response\.(?:created|in_progress|queued|completed|failed|incomplete)"
)
#: A JSON answer is held whole to be patched: a larger one passes through unpatched.
MAX_JSON_ANSWER: Final = 32 * 1024 * 1024


@dataclass(slots=True)
class Turn:
    """What the stateful layer knows about the response being made."""

    id: str
    workspace: str
    store: bool
    background: bool
    stream: bool
    previous_response_id: str | None
    chain: list[str] = field(default_factory=list)
    input_items: list[dict[str, Any]] = field(default_factory=list)
    created_at: float = 0.0
    #: Reasoning items withheld from the model (OpenAI's ``input_transformations``).
    input_transformations: list[dict[str, Any]] = field(default_factory=list)
    #: Adds ``encrypted_content`` to a reasoning item (the include asked for it).
    seal: Callable[[dict[str, Any]], None] | None = None
    #: Items of the chain put before the client's own input (error params are shifted back).
    input_offset: int = 0
    #: The conversation this turn continues (its items are appended when it ends).
    conversation_id: str | None = None

    def patch(self, response: dict[str, Any]) -> None:
        response["id"] = self.id
        response["store"] = self.store
        response["background"] = self.background
        response["previous_response_id"] = self.previous_response_id
        if self.input_transformations:
            response["input_transformations"] = self.input_transformations
        if self.conversation_id is not None:
            response["conversation"] = {"id": self.conversation_id}
        output = response.get("output")
        if self.seal is not None and isinstance(output, list):
            for item in output:
                if isinstance(item, dict) and item.get("type") == "reasoning":
                    self.seal(item)


#: Called with each (sequence number, type, SSE bytes) the capture forwards.
EventSink = Callable[[int, str, bytes], Awaitable[None]]
#: Called with the terminal Response object and its JSON before it is forwarded; returns the JSON
#: to forward (the same bytes, or new ones when saving had to change the object). The Response
#: is serialized once: the bytes the client receives are the bytes stored.
TerminalSaver = Callable[[dict[str, Any], bytes], Awaitable[bytes]]


class ResponseCapture:
    """The inner app's ``send`` for one turn (see the module docstring)."""

    __slots__ = (
        "answer",
        "chunks",
        "clean",
        "final",
        "mode",
        "on_event",
        "parser",
        "pending",
        "save",
        "send",
        "size",
        "start",
        "turn",
    )

    def __init__(
        self,
        turn: Turn,
        send: Send,
        save: TerminalSaver,
        on_event: EventSink | None = None,
        *,
        answer: AnswerSlot | None = None,
    ) -> None:
        self.turn = turn
        #: The adapter's answer, patched with ``turn.patch`` (``akgate.adapter._answer``).
        self.answer = answer
        self.send = send
        self.save = save
        self.on_event = on_event
        self.mode: Literal["head", "json", "sse", "pass", "error"] = "head"
        self.start: Message | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.parser: SSEParser | None = None
        self.pending = False
        #: The parser holds nothing: every chunk so far ended with a blank line (``\n\n``).
        self.clean = True
        #: The terminal Response object, once seen.
        self.final: dict[str, Any] | None = None

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            headers = message.get("headers", ())
            media = (find_header(headers, b"content-type") or b"").lower()
            status = message["status"]
            if status == 200 and media.startswith(b"text/event-stream"):
                self.mode = "sse"
                self.parser = SSEParser()
                await self.send(message)
            elif status == 200 and media.startswith(b"application/json"):
                self.mode = "json"
                self.start = message
            elif status >= 400 and self.turn.input_offset and media.startswith(b"application/json"):
                self.mode = "error"  # its param names an index in the expanded input
                self.start = message
            else:
                self.mode = "pass"  # an error answer: nothing to store
                await self.send(message)
            return
        if kind != "http.response.body":
            await self.send(message)
            return
        if self.mode == "sse":
            await self._sse(message.get("body", b""), message.get("more_body", False))
        elif self.mode in ("json", "error"):
            await self._json(message)
        else:
            await self.send(message)

    # --- JSON ---------------------------------------------------------------------------

    async def _json(self, message: Message) -> None:
        chunk = message.get("body", b"")
        self.size += len(chunk)
        self.chunks.append(chunk)
        if self.size > MAX_JSON_ANSWER:
            self.mode = "pass"  # too large to hold: it goes out as it is, unstored
            logger.warning("response %s not stored: its JSON answer is too large", self.turn.id)
            assert self.start is not None
            await self.send(self.start)
            await self.send({**message, "body": b"".join(self.chunks)})
            self.chunks = []
            return
        if message.get("more_body", False):
            return
        chunks, self.chunks = self.chunks, []
        start = self.start
        assert start is not None
        answer = self.answer
        if (
            answer is not None
            and answer.response is not None
            and self.mode == "json"
            and len(chunks) == 1
            and chunks[0] is answer.body
        ):
            # The adapter's own bytes, of an object it already patched: nothing to read back.
            self.final = answer.response
            body = await self.save(answer.response, chunks[0])
            await self.send(_with_length(start, body))
            await self.send({"type": "http.response.body", "body": body, "more_body": False})
            return
        body = b"".join(chunks)
        try:
            response = from_json(body)
        except ValueError:
            response = None
        if self.mode == "error":
            error = response.get("error") if isinstance(response, dict) else None
            param = error.get("param") if isinstance(error, dict) else None
            fixed = self._client_param(param) if isinstance(param, str) else None
            if fixed is not None and isinstance(error, dict) and isinstance(param, str):
                error["param"] = fixed
                error["message"] = str(error.get("message", "")).replace(param, fixed)
                body = to_json(response)
                start = _with_length(start, body)
        elif isinstance(response, dict) and response.get("object") == "response":
            self.turn.patch(response)
            self.final = response
            body = await self.save(response, to_json(response))
            start = _with_length(start, body)
        await self.send(start)
        await self.send({"type": "http.response.body", "body": body, "more_body": False})

    def _client_param(self, param: str) -> str | None:
        """``input[N]...`` of the expanded input as the client's own ``input[N - offset]...``."""
        match = _INPUT_PARAM.match(param)
        if match is None:
            return None
        index = int(match.group(1)) - self.turn.input_offset
        if index < 0:
            return "previous_response_id"  # a stored item: the chain is what is wrong
        return f"input[{index}]{match.group(2)}"

    # --- SSE ----------------------------------------------------------------------------

    async def _sse(self, chunk: bytes, more_body: bool) -> None:
        parser = self.parser
        assert parser is not None
        # Whole events (the parser holds nothing), none larger than the parser takes, and no
        # event log to feed.
        whole = (
            self.clean
            and chunk.endswith(b"\n\n")
            and self.on_event is None
            and len(chunk) <= parser.max_event_size
        )
        if whole and not self._may_patch(chunk):
            # The hot path (text deltas): whole events, none to patch. The parser would only
            # split them to find that out; they go out as they came.
            await self.send({"type": "http.response.body", "body": chunk, "more_body": more_body})
            return
        if whole and chunk.count(b"\n\n") > 1:
            # Whole events, some to patch (the terminal chunk: the last deltas, the done
            # events and ``response.completed``): only those are read, the others go out as
            # they came.
            await self._some_events(chunk, more_body)
            return
        if chunk:
            self.clean = chunk.endswith(b"\n\n")
        whole_before = not self.pending
        try:
            events = parser.feed(chunk) if chunk else []
            if chunk:
                self.pending = not chunk.endswith((b"\n\n", b"\r\n\r\n", b"\r\r"))
            if not more_body and self.pending:
                events += parser.feed(b"\n\n")  # a last event without its blank line counts
        except SSEEventTooLarge:
            self.mode = "pass"  # cannot read it: forwarded as it is
            await self.send({"type": "http.response.body", "body": chunk, "more_body": more_body})
            return
        out, patched = await self._patched(events)
        data = chunk if whole_before and not self.pending and not patched else b"".join(out)
        if data or not more_body:
            await self.send({"type": "http.response.body", "body": data, "more_body": more_body})

    def _may_patch(self, events: bytes) -> bool:
        """Whether whole ``events`` may hold one the capture changes (else they pass unread)."""
        return (
            _LIFECYCLE_NAME.search(events) is not None
            or events.find(b"\\u") >= 0
            or (self.turn.seal is not None and events.find(b"response.output_item.done") >= 0)
        )

    async def _some_events(self, chunk: bytes, more_body: bool) -> None:
        """A chunk of whole events, smaller than the parser's bound: each is read only when it
        may need a patch (``"\\n\\n"`` ends an event whatever the line ends before it)."""
        parser = self.parser
        assert parser is not None
        out: list[bytes] = []
        patched = False
        for piece in chunk.split(b"\n\n")[:-1]:
            segment = piece + b"\n\n"
            if not self._may_patch(segment):
                out.append(segment)
                continue
            encoded, changed = await self._patched(parser.feed(segment))
            out += encoded
            patched = patched or changed
        data = b"".join(out) if patched else chunk
        await self.send({"type": "http.response.body", "body": data, "more_body": more_body})

    async def _patched(self, events: list[SSEEvent]) -> tuple[list[bytes], bool]:
        """Each event encoded, lifecycle ones patched (the terminal one saved first), and
        whether any was."""
        out: list[bytes] = []
        patched = False
        for event in events:
            name = event.event
            if name is None and event.data.startswith("{"):
                try:
                    name = from_json(event.data).get("type")
                except (ValueError, AttributeError):
                    name = None
            if name in LIFECYCLE_EVENTS:
                encoded = await self._lifecycle(name, event.data, event.event)
                patched = True
            elif name == "response.output_item.done" and self.turn.seal is not None:
                encoded = self._sealed_item(event.data, event.event)
                patched = True
            else:
                encoded = encode_event(event.data, event.event)
            out.append(encoded)
            if self.on_event is not None:
                await self.on_event(_sequence(event.data), name or "", encoded)
        return out, patched

    async def _lifecycle(self, name: str, data: str, event_name: str | None) -> bytes:
        try:
            value = from_json(data)
        except ValueError:
            return encode_event(data, event_name)
        response = value.get("response") if isinstance(value, dict) else None
        if isinstance(response, dict):
            self.turn.patch(response)
            if name in TERMINAL_EVENTS:
                self.final = response
                encoded = await self.save(response, to_json(response))
                return encode_event(_with_response(value, encoded), event_name)
        return encode_event(to_json(value), event_name)

    def _sealed_item(self, data: str, event_name: str | None) -> bytes:
        """``output_item.done`` of a reasoning item gets its ``encrypted_content`` (the same
        value as in the terminal response; never on ``output_item.added``)."""
        seal = self.turn.seal
        assert seal is not None
        try:
            value = from_json(data)
        except ValueError:
            return encode_event(data, event_name)
        item = value.get("item") if isinstance(value, dict) else None
        if not isinstance(item, dict) or item.get("type") != "reasoning":
            return encode_event(data, event_name)
        seal(item)
        return encode_event(to_json(value), event_name)


def _with_response(event: dict[str, Any], response: bytes) -> bytes:
    """The event's JSON with ``response`` spliced in as its last member (not encoded again)."""
    head = to_json({k: v for k, v in event.items() if k != "response"})
    return head[:-1] + (b',"response":' if len(head) > 2 else b'"response":') + response + b"}"


def _with_length(start: Message, body: bytes) -> Message:
    headers = [(k, v) for k, v in start.get("headers", ()) if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode("latin-1")))
    return {**start, "headers": headers}


def _sequence(data: str) -> int:
    """The event's ``sequence_number`` (-1 when it has none)."""
    try:
        value = from_json(data)
    except ValueError:
        return -1
    seq = value.get("sequence_number") if isinstance(value, dict) else None
    return seq if isinstance(seq, int) else -1
