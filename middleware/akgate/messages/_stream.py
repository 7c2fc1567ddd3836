"""Streaming state machine: chat completion chunks -> Anthropic Messages events.

One :class:`MessagesStreamTranslator` per stream. The order is Anthropic's: ``message_start``,
then per block ``content_block_start``, its deltas and ``content_block_stop`` (one block open at
a time, indexes 0, 1, 2 ... in start order), then ``message_delta`` (stop reason and cumulative
usage) and ``message_stop``. A failure ends the stream with one ``error`` event and nothing
after it. Events are encoded straight to SSE bytes: this is the per-chunk hot path.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic_core import from_json, to_json

from akgate.errors import GatewayError, anthropic_error_type

from ._count import CHARS_PER_TOKEN
from ._ids import client_tool_id, new_id
from ._request import MessagesRequest
from ._response import REFUSAL_DETAILS, map_usage, signature, stop_reason, tool_input

__all__ = ["PING", "MessagesStreamTranslator", "UpstreamStreamError"]

PING: Final = b'event: ping\ndata: {"type":"ping"}\n\n'
_DONE: Final = "[DONE]"
_TEXT_HEAD: Final = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
_TEXT_MID: Final = b',"delta":{"type":"text_delta","text":'
_JSON_MID: Final = b',"delta":{"type":"input_json_delta","partial_json":'
_PLAIN_TEXT_KEYS: Final = frozenset({"content", "role"})


class UpstreamStreamError(Exception):
    """The inner stream is not a readable chat-completions stream."""


def _event(name: bytes, payload: dict[str, Any]) -> bytes:
    return b"event: " + name + b"\ndata: " + to_json(payload) + b"\n\n"


class _Call:
    __slots__ = ("args", "block", "call_id", "name", "pending")

    def __init__(self) -> None:
        self.call_id: str | None = None
        self.name: str | None = None
        #: Argument fragments received before id and name were both known.
        self.pending: list[str] = []
        self.args: list[str] = []
        self.block: dict[str, Any] | None = None


class MessagesStreamTranslator:
    """Translate one chat stream; each method returns the SSE bytes to send (maybe ``b""``).

    :meth:`parse` each inner ``data:`` payload, :meth:`open` once (``message_start`` and a
    ``ping``), :meth:`translate` each chunk, then :meth:`finish` at the end or :meth:`fail`.
    After the end, :attr:`message` holds the final Message (for a JSON answer over a stream).
    """

    __slots__ = (
        "_blocks",
        "_buf",
        "_call",
        "_calls",
        "_chars",
        "_finish_reason",
        "_json_prefix",
        "_matched",
        "_open",
        "_out",
        "_request",
        "_text_prefix",
        "_usage",
        "done_seen",
        "error",
        "input_estimate",
        "message",
        "skeleton",
    )

    def __init__(self, request: MessagesRequest, *, input_estimate: int = 0) -> None:
        self._request = request
        self.input_estimate = input_estimate
        self.skeleton: dict[str, Any] = {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": request.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_estimate,
                "output_tokens": 1,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }
        self._out: list[bytes] = []
        self._blocks: list[dict[str, Any]] = []
        self._open: str | None = None  # "thinking" | "text" | "tool_use"
        self._buf: list[str] = []
        self._call: _Call | None = None
        self._calls: dict[int, _Call] = {}
        self._usage: Any = None
        self._finish_reason: str | None = None
        self._matched: Any = None
        self._chars = 0
        #: The bytes before the JSON text of a text_delta in the open block (the hot path).
        self._text_prefix = b""
        self._json_prefix = b""
        self.done_seen = False
        #: The final Message once :meth:`finish` ran; ``error`` once :meth:`fail` ran.
        self.message: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        return self.message is not None or self.error is not None

    def _flush(self) -> bytes:
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        return data

    @staticmethod
    def parse(data: str) -> dict[str, Any] | None:
        """One inner ``data:`` payload as a chunk; ``None`` for ``[DONE]``."""
        if data == _DONE:
            return None
        try:
            chunk = from_json(data)
        except ValueError:
            raise UpstreamStreamError("The upstream sent an event that is not JSON.") from None
        if not isinstance(chunk, dict):
            raise UpstreamStreamError("The upstream sent an event that is not a JSON object.")
        return chunk

    def open(self) -> bytes:
        """``message_start`` (with the estimated input tokens) and one ``ping``."""
        return _event(b"message_start", {"type": "message_start", "message": self.skeleton}) + PING

    # --- chunks ---------------------------------------------------------------------------

    def translate(self, chunk: dict[str, Any] | None) -> bytes:
        """The events for one parsed chunk (``None`` is ``[DONE]``: the end of the message)."""
        if self.finished or self.done_seen:
            return b""
        if chunk is None:
            self.done_seen = True
            return self.finish()
        get = chunk.get
        error = get("error")
        if error:
            message = error.get("message") if isinstance(error, dict) else None
            return self.fail(502, message if isinstance(message, str) else "The upstream failed.")
        usage = get("usage")
        if usage is not None:
            self._usage = usage
        choices = get("choices")
        if not choices or not isinstance(choices, list):
            return self._flush()
        choice = choices[0]
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            choice = next((c for c in choices if isinstance(c, dict) and c.get("index") == 0), {})
        delta = choice.get("delta")
        if delta and isinstance(delta, dict):
            content = delta.get("content")
            if (
                content
                and isinstance(content, str)
                and self._open == "text"
                and delta.keys() <= _PLAIN_TEXT_KEYS
                and choice.get("finish_reason") is None
            ):
                # The hot path: one more piece of the open text block.
                self._buf.append(content)
                self._chars += len(content)
                return self._text_prefix + to_json(content) + b"}}\n\n"
            self._delta(delta)
        reason = choice.get("finish_reason")
        if reason and isinstance(reason, str):
            self._finish_reason = reason
            self._matched = choice.get("stop_reason")
        return self._flush()

    def _delta(self, delta: dict[str, Any]) -> None:
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning and isinstance(reasoning, str):
            self._thinking_delta(reasoning)
        content = delta.get("content")
        if content and isinstance(content, str):
            self._text_delta(content)
        refusal = delta.get("refusal")
        if refusal and isinstance(refusal, str):
            self._text_delta(refusal)
        tool_calls = delta.get("tool_calls")
        if tool_calls and isinstance(tool_calls, list):
            for position, call in enumerate(tool_calls):
                if isinstance(call, dict):
                    self._tool_call_delta(call, position)
        legacy = delta.get("function_call")
        if legacy and isinstance(legacy, dict):
            self._tool_call_delta({"index": 0, "function": legacy}, 0)

    # --- blocks ---------------------------------------------------------------------------

    def _start(self, kind: str, block: dict[str, Any]) -> None:
        self._close_open()
        self._blocks.append(block)
        self._open = kind
        self._buf = []
        self._out.append(
            _event(
                b"content_block_start",
                {
                    "type": "content_block_start",
                    "index": len(self._blocks) - 1,
                    "content_block": block,
                },
            )
        )
        if kind == "text":
            index = str(len(self._blocks) - 1).encode()
            self._text_prefix = _TEXT_HEAD + index + _TEXT_MID
        if kind != "tool_use":
            block[kind] = ""  # sent empty; filled in for the final message when it closes
            if kind == "thinking":
                block["signature"] = ""

    def _delta_event(self, delta: dict[str, Any]) -> None:
        self._out.append(
            _event(
                b"content_block_delta",
                {"type": "content_block_delta", "index": len(self._blocks) - 1, "delta": delta},
            )
        )

    def _thinking_delta(self, text: str) -> None:
        if self._open != "thinking":
            self._start("thinking", {"type": "thinking", "thinking": "", "signature": ""})
        self._buf.append(text)
        self._chars += len(text)
        if not self._request.omit_thinking:
            self._delta_event({"type": "thinking_delta", "thinking": text})

    def _text_delta(self, text: str) -> None:
        if self._open != "text":
            self._start("text", {"type": "text", "text": ""})
        self._buf.append(text)
        self._chars += len(text)
        self._delta_event({"type": "text_delta", "text": text})

    def _tool_call_delta(self, tc: dict[str, Any], position: int) -> None:
        index = tc.get("index")
        if not isinstance(index, int):
            index = position
        function = tc.get("function")
        if not isinstance(function, dict):
            function = {}
        raw_id = tc.get("id")
        call_id = raw_id if isinstance(raw_id, str) and raw_id else None
        raw_name = function.get("name")
        name = raw_name if isinstance(raw_name, str) else None
        raw_args = function.get("arguments")
        args = raw_args if isinstance(raw_args, str) else ""
        call = self._calls.get(index)
        if call is not None and call_id and call.call_id and call_id != call.call_id:
            call = None  # the same index reused for another call
        if call is None:
            call = _Call()
            self._calls[index] = call
            self._close_open()
            self._call = call
            self._open = "tool_use"
        elif call is not self._call:
            if not (call_id or name or args):
                return  # an empty fragment for a closed call carries nothing
            # Its block is already closed: the client would get the arguments in the wrong
            # block. An explicit error beats a silently wrong tool call.
            raise UpstreamStreamError(
                "The upstream interleaved fragments of a tool call that was already closed."
            )
        if call_id and not call.call_id:
            call.call_id = call_id
        if name and not call.name:
            call.name = name  # some upstreams repeat the full name on every fragment
        self._chars += len(args)
        if call.block is None:
            if args:
                call.pending.append(args)
            if call.call_id and call.name:
                self._announce(call)
        elif args:
            call.args.append(args)
            self._out.append(self._json_prefix + to_json(args) + b"}}\n\n")

    def _announce(self, call: _Call) -> None:
        name = call.name or ""
        block = {
            "type": "tool_use",
            "id": client_tool_id(call.call_id),
            "name": self._request.names.get(name, name),
            "input": {},
        }
        call.block = block
        # Not through _start: the call is already the open block (it has no other to close).
        self._blocks.append(block)
        self._json_prefix = _TEXT_HEAD + str(len(self._blocks) - 1).encode() + _JSON_MID
        self._out.append(
            _event(
                b"content_block_start",
                {
                    "type": "content_block_start",
                    "index": len(self._blocks) - 1,
                    "content_block": block,
                },
            )
        )
        if call.pending:
            args = "".join(call.pending)
            call.pending = []
            call.args.append(args)
            self._delta_event({"type": "input_json_delta", "partial_json": args})

    def _close_open(self) -> None:
        kind = self._open
        if kind is None:
            return
        self._open = None
        if kind == "tool_use":
            call = self._call
            assert call is not None
            self._call = None
            if call.block is None:
                self._announce(call)  # a call without an id or a name still gets its block
            assert call.block is not None
            try:
                call.block["input"] = tool_input("".join(call.args))
            except GatewayError as err:
                raise UpstreamStreamError(err.message) from None
        else:
            block = self._blocks[-1]
            text = "".join(self._buf)
            self._buf = []
            if kind == "thinking":
                sig = signature(text)
                block["thinking"] = "" if self._request.omit_thinking else text
                block["signature"] = sig
                self._delta_event({"type": "signature_delta", "signature": sig})
            else:
                block["text"] = text
        self._out.append(
            _event(
                b"content_block_stop",
                {"type": "content_block_stop", "index": len(self._blocks) - 1},
            )
        )

    # --- the end --------------------------------------------------------------------------

    def finish(self) -> bytes:
        """End of the inner stream: close the open block, ``message_delta``, ``message_stop``."""
        if self.finished:
            return self._flush()
        if self._finish_reason is None and not self.done_seen:
            return self.fail(502, "The upstream stream ended before it finished the message.")
        try:
            self._close_open()
        except UpstreamStreamError as exc:  # unparseable tool arguments: fail, never guess
            return self.fail(502, str(exc))
        tool_use = any(b["type"] == "tool_use" for b in self._blocks)
        reason, sequence = stop_reason(
            self._finish_reason or "stop",
            tool_use=tool_use,
            matched=self._matched,
            request=self._request,
        )
        estimate = -(-self._chars // CHARS_PER_TOKEN)
        if self._usage is None:
            usage = map_usage(None, output_estimate=estimate)
            usage["input_tokens"] = self.input_estimate
        else:
            usage = map_usage(self._usage)
        self._out.append(
            _event(
                b"message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": reason,
                        "stop_sequence": sequence,
                        "stop_details": REFUSAL_DETAILS if reason == "refusal" else None,
                    },
                    "usage": usage,
                },
            )
        )
        self._out.append(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
        self.message = {
            **self.skeleton,
            "content": self._blocks,
            "stop_reason": reason,
            "stop_sequence": sequence,
            "stop_details": REFUSAL_DETAILS if reason == "refusal" else None,
            "usage": usage,
        }
        return self._flush()

    def fail(self, status: int, message: str) -> bytes:
        """One ``error`` event ending the stream (no ``message_stop`` after it)."""
        if self.finished:
            return self._flush()
        self.error = {"type": anthropic_error_type(status), "message": message}
        self._out.append(_event(b"error", {"type": "error", "error": self.error}))
        return self._flush()
