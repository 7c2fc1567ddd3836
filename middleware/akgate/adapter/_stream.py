"""Streaming state machine: chat completion chunks -> Responses stream events.

One :class:`StreamTranslator` per stream (docs/responses-mapping.md, Stream). Items are strictly
sequential: the open item closes before the next one is added, so ``output_index`` always points
at an announced item, function calls take consecutive indexes, and every ``item_id`` is its item's
``id``. Events are encoded straight to SSE bytes (``event:`` equal to ``type``, one ``data:``
line) because this is the per-chunk hot path.
"""

from __future__ import annotations

import time
from typing import Any, Final

from pydantic_core import from_json, to_json

from akgate._faults import fault_payload, responses_error_event
from akgate.errors import error_payload

from ._options import AdapterOptions
from ._response import (
    finish_status,
    flatten_annotation,
    full_logprob,
    map_usage,
    new_id,
    response_output_text,
    response_skeleton,
)
from ._tools import CustomInputDecoder, ToolMap, call_item, custom_input

__all__ = ["DONE", "StreamTranslator", "UpstreamStreamError"]

DONE: Final = "[DONE]"
_DONE_LINE: Final = b"data: [DONE]\n\n"
_NO_LOGPROBS: Final[list[dict[str, Any]]] = []
_PLAIN_TEXT_KEYS: Final = frozenset({"content", "role"})
#: A text delta without logprobs is encoded from its parts (``_text_delta``); the tests turn
#: this off to compare with the event encoded whole.
_FAST_TEXT_DELTAS = True
_TEXT_DELTA_HEAD: Final = (
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","item_id":'
)


class UpstreamStreamError(Exception):
    """The inner stream is not a readable chat-completions stream (bad JSON, not an object)."""


class _Call:
    __slots__ = ("args", "call_id", "decoder", "deltas", "item", "name", "pending", "streamed")

    def __init__(self) -> None:
        self.call_id: str | None = None
        self.name: str | None = None
        self.args: list[str] = []
        #: Argument fragments received before id and name were both known.
        self.pending: list[str] = []
        self.item: dict[str, Any] | None = None
        self.deltas = 0
        #: A custom tool's call: its input is decoded out of the arguments as they stream.
        self.decoder: CustomInputDecoder | None = None
        self.streamed: list[str] = []


def _strip_logprob(lp: dict[str, Any]) -> dict[str, Any]:
    """The delta-event logprob shape: no ``bytes``, as OpenAI sends it."""
    return {
        "token": lp.get("token", ""),
        "logprob": lp.get("logprob", 0.0),
        "top_logprobs": [
            {"token": t.get("token", ""), "logprob": t.get("logprob", 0.0)}
            for t in lp.get("top_logprobs") or ()
            if isinstance(t, dict)
        ],
    }


class StreamTranslator:
    """Translate one chat stream; each method returns the SSE bytes to send (maybe ``b""``).

    Usage: :meth:`parse` each inner ``data:`` payload, :meth:`open` once (``created`` and
    ``in_progress``), :meth:`translate` each chunk, then :meth:`finish` at end of stream or
    :meth:`fail` on an error. After the terminal event :attr:`response` holds the final object.
    """

    __slots__ = (
        "_buf",
        "_call",
        "_calls",
        "_delta_head",
        "_finish_reason",
        "_items",
        "_logprobs",
        "_msg",
        "_open",
        "_out",
        "_part",
        "_reasoning_mode",
        "_routing_metadata",
        "_rs",
        "_send_done",
        "_seq",
        "_service_tier",
        "_tool_map",
        "_tools",
        "_usage",
        "done_seen",
        "response",
        "skeleton",
    )

    def __init__(
        self,
        request: dict[str, Any],
        options: AdapterOptions,
        *,
        response_id: str | None = None,
        created_at: int | None = None,
    ) -> None:
        self.skeleton = response_skeleton(
            request, response_id or new_id("resp_"), created_at or int(time.time())
        )
        self._reasoning_mode = options.reasoning_events
        self._send_done = options.send_done
        self._seq = 0
        self._out: list[bytes] = []
        self._items: list[dict[str, Any]] = []
        self._open: str | None = None  # "reasoning" | "message" | "call"
        self._msg: dict[str, Any] | None = None
        self._rs: dict[str, Any] | None = None
        self._part: dict[str, Any] | None = None
        #: ``(part, bytes)``: the text delta event of ``part`` up to its ``delta`` value.
        self._delta_head: tuple[dict[str, Any], bytes] | None = None
        self._buf: list[str] = []
        self._logprobs: list[dict[str, Any]] = []
        self._call: _Call | None = None
        self._calls: dict[int, _Call] = {}
        self._usage: Any = None
        self._finish_reason: str | None = None
        self._routing_metadata: Any = None
        self._service_tier: str | None = None
        self._tools = request.get("tools")
        self._tool_map: ToolMap | None = None  # built at the first tool call
        self.done_seen = False
        #: The final Response object, once the terminal event was produced.
        self.response: dict[str, Any] | None = None

    # --- plumbing -------------------------------------------------------------------------

    def _emit(self, event: dict[str, Any]) -> None:
        event["sequence_number"] = self._seq
        self._seq += 1
        self._out.append(
            b"event: " + event["type"].encode() + b"\ndata: " + to_json(event) + b"\n\n"
        )

    def _flush(self) -> bytes:
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        return data

    @property
    def finished(self) -> bool:
        """True once a terminal event was produced."""
        return self.response is not None

    @staticmethod
    def parse(data: str | bytes) -> dict[str, Any] | None:
        """One inner ``data:`` payload as a chunk; ``None`` for ``[DONE]`` (as ``str``)."""
        if data == DONE:
            return None
        try:
            chunk = from_json(data)
        except ValueError:
            raise UpstreamStreamError("The upstream sent an event that is not JSON.") from None
        if not isinstance(chunk, dict):
            raise UpstreamStreamError("The upstream sent an event that is not a JSON object.")
        return chunk

    def open(self, model: Any = None) -> bytes:
        """``response.created`` and ``response.in_progress``."""
        if not self.skeleton["model"] and isinstance(model, str):
            self.skeleton["model"] = model
        self._emit({"type": "response.created", "response": self.skeleton})
        self._emit({"type": "response.in_progress", "response": self.skeleton})
        return self._flush()

    # --- chunks ---------------------------------------------------------------------------

    def translate(self, chunk: dict[str, Any] | None) -> bytes:
        """The events for one parsed chunk (``None`` is ``[DONE]``: the terminal event)."""
        if self.response is not None or self.done_seen:
            return b""  # nothing after the terminal event or [DONE]
        if chunk is None:
            self.done_seen = True
            return self.finish()
        get = chunk.get
        error = get("error")
        if error:
            return self.fail_with(error)
        usage = get("usage")
        if usage is not None:
            self._usage = usage  # may ride on a content chunk or on choices: []
        metadata = get("routing_metadata")
        if metadata is not None:
            self._routing_metadata = metadata
        tier = get("service_tier")
        if isinstance(tier, str):
            self._service_tier = tier
        choices = get("choices")
        if not choices or not isinstance(choices, list):
            return self._flush()
        choice = choices[0]
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            # Responses has no n: only choice 0 counts (it is usually the only one).
            choice = next((c for c in choices if isinstance(c, dict) and c.get("index") == 0), {})
        delta = choice.get("delta")
        if delta and isinstance(delta, dict):
            content = delta.get("content")
            if content and isinstance(content, str) and delta.keys() <= _PLAIN_TEXT_KEYS:
                self._text_delta(content, choice)  # the common case, checked once
            else:
                self._delta(delta, choice)
        reason = choice.get("finish_reason")
        if reason and isinstance(reason, str):
            self._finish_reason = reason
        return self._flush()

    def _delta(self, delta: dict[str, Any], choice: dict[str, Any]) -> None:
        reasoning = delta.get("reasoning_content")
        if not reasoning:
            reasoning = delta.get("reasoning")
        if reasoning and isinstance(reasoning, str):
            self._reasoning_delta(reasoning)
        content = delta.get("content")
        if content and isinstance(content, str):
            self._text_delta(content, choice)
        annotations = delta.get("annotations")
        if annotations and isinstance(annotations, list):
            self._annotations(annotations)
        refusal = delta.get("refusal")
        if refusal and isinstance(refusal, str):
            self._refusal_delta(refusal)
        tool_calls = delta.get("tool_calls")
        if tool_calls and isinstance(tool_calls, list):
            for position, call in enumerate(tool_calls):
                if isinstance(call, dict):
                    self._tool_call_delta(call, position)
        legacy = delta.get("function_call")
        if legacy and isinstance(legacy, dict):
            self._tool_call_delta({"index": 0, "function": legacy}, 0)

    # --- reasoning ------------------------------------------------------------------------

    def _reasoning_delta(self, text: str) -> None:
        if self._open != "reasoning":
            self._close_open("completed")
            rs: dict[str, Any] = {
                "id": new_id("rs_"),
                "type": "reasoning",
                "status": "in_progress",
                "summary": [],
            }
            if self._reasoning_mode == "reasoning_text":
                rs["content"] = []
            self._add_item(rs)
            self._rs = rs
            self._open = "reasoning"
            self._buf = []
            base = {"item_id": rs["id"], "output_index": len(self._items) - 1}
            if self._reasoning_mode == "reasoning_text":
                self._emit(
                    {
                        "type": "response.content_part.added",
                        **base,
                        "content_index": 0,
                        "part": {"type": "reasoning_text", "text": ""},
                    }
                )
            else:
                self._emit(
                    {
                        "type": "response.reasoning_summary_part.added",
                        **base,
                        "summary_index": 0,
                        "part": {"type": "summary_text", "text": ""},
                    }
                )
        self._buf.append(text)
        assert self._rs is not None
        if self._reasoning_mode == "reasoning_text":
            self._emit(
                {
                    "type": "response.reasoning_text.delta",
                    "item_id": self._rs["id"],
                    "output_index": len(self._items) - 1,
                    "content_index": 0,
                    "delta": text,
                }
            )
        else:
            self._emit(
                {
                    "type": "response.reasoning_summary_text.delta",
                    "item_id": self._rs["id"],
                    "output_index": len(self._items) - 1,
                    "summary_index": 0,
                    "delta": text,
                }
            )

    def _close_reasoning(self, status: str, *, silent: bool = False) -> None:
        rs = self._rs
        assert rs is not None
        text = "".join(self._buf)
        base = {"item_id": rs["id"], "output_index": self._items.index(rs)}
        if self._reasoning_mode == "reasoning_text":
            part = {"type": "reasoning_text", "text": text}
            rs["content"] = [part]
            if not silent:
                self._emit(
                    {
                        "type": "response.reasoning_text.done",
                        **base,
                        "content_index": 0,
                        "text": text,
                    }
                )
                self._emit(
                    {"type": "response.content_part.done", **base, "content_index": 0, "part": part}
                )
        else:
            part = {"type": "summary_text", "text": text}
            rs["summary"] = [part]
            if not silent:
                self._emit(
                    {
                        "type": "response.reasoning_summary_text.done",
                        **base,
                        "summary_index": 0,
                        "text": text,
                    }
                )
                self._emit(
                    {
                        "type": "response.reasoning_summary_part.done",
                        **base,
                        "summary_index": 0,
                        "part": part,
                    }
                )
        rs["status"] = status
        if not silent:
            self._emit(
                {
                    "type": "response.output_item.done",
                    "output_index": base["output_index"],
                    "item": rs,
                }
            )
        self._rs = None

    # --- message --------------------------------------------------------------------------

    def _ensure_message(self) -> dict[str, Any]:
        if self._open != "message":
            self._close_open("completed")
            msg = {
                "id": new_id("msg_"),
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            self._add_item(msg)
            self._msg = msg
            self._open = "message"
            self._part = None
        assert self._msg is not None
        return self._msg

    def _ensure_part(self, kind: str) -> dict[str, Any]:
        msg = self._ensure_message()
        part = self._part
        if part is not None and part["type"] == kind:
            return part
        if part is not None:
            self._close_part()
        if kind == "output_text":
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        else:
            part = {"type": "refusal", "refusal": ""}
        msg["content"].append(part)
        self._part = part
        self._buf = []
        self._logprobs = []
        self._emit(
            {
                "type": "response.content_part.added",
                "item_id": msg["id"],
                "output_index": len(self._items) - 1,
                "content_index": len(msg["content"]) - 1,
                "part": part,
            }
        )
        return part

    def _text_delta(self, text: str, choice: dict[str, Any]) -> None:
        msg = self._ensure_message()
        part = self._part
        if part is None or part["type"] != "output_text":
            self._ensure_part("output_text")
        self._buf.append(text)
        delta_logprobs: list[dict[str, Any]] = _NO_LOGPROBS  # serialized at once, never mutated
        logprobs = choice.get("logprobs")
        if logprobs and isinstance(logprobs, dict):
            content = logprobs.get("content")
            if isinstance(content, list):
                delta_logprobs = []
                for lp in content:
                    if isinstance(lp, dict):
                        self._logprobs.append(full_logprob(lp))
                        delta_logprobs.append(_strip_logprob(lp))
        if delta_logprobs is _NO_LOGPROBS and _FAST_TEXT_DELTAS:
            # The hot path: the event's bytes around the text are the same for every delta of
            # the part (its item, indexes and empty logprobs), so only the text is encoded.
            head = self._delta_head
            if head is None or head[0] is not self._part:
                assert self._part is not None
                head = self._delta_head = (
                    self._part,
                    _TEXT_DELTA_HEAD
                    + to_json(msg["id"])
                    + b',"output_index":'
                    + str(len(self._items) - 1).encode()
                    + b',"content_index":'
                    + str(len(msg["content"]) - 1).encode()
                    + b',"delta":',
                )
            seq = self._seq
            self._seq = seq + 1
            self._out.append(
                head[1]
                + to_json(text)
                + b',"logprobs":[],"sequence_number":'
                + str(seq).encode()
                + b"}\n\n"
            )
            return
        self._emit(
            {
                "type": "response.output_text.delta",
                "item_id": msg["id"],
                "output_index": len(self._items) - 1,
                "content_index": len(msg["content"]) - 1,
                "delta": text,
                "logprobs": delta_logprobs,
            }
        )

    def _annotations(self, annotations: list[Any]) -> None:
        part = self._ensure_part("output_text")
        msg = self._msg
        assert msg is not None
        for annotation in annotations:
            flat = flatten_annotation(annotation)
            part["annotations"].append(flat)
            self._emit(
                {
                    "type": "response.output_text.annotation.added",
                    "item_id": msg["id"],
                    "output_index": len(self._items) - 1,
                    "content_index": len(msg["content"]) - 1,
                    "annotation_index": len(part["annotations"]) - 1,
                    "annotation": flat,
                }
            )

    def _refusal_delta(self, text: str) -> None:
        self._ensure_part("refusal")
        msg = self._msg
        assert msg is not None
        self._buf.append(text)
        self._emit(
            {
                "type": "response.refusal.delta",
                "item_id": msg["id"],
                "output_index": len(self._items) - 1,
                "content_index": len(msg["content"]) - 1,
                "delta": text,
            }
        )

    def _close_part(self, *, silent: bool = False) -> None:
        part, msg = self._part, self._msg
        assert part is not None
        assert msg is not None
        text = "".join(self._buf)
        base = {
            "item_id": msg["id"],
            "output_index": self._items.index(msg),
            "content_index": msg["content"].index(part),
        }
        if part["type"] == "output_text":
            part["text"] = text
            part["logprobs"] = self._logprobs
            if not silent:
                self._emit(
                    {
                        "type": "response.output_text.done",
                        **base,
                        "text": text,
                        "logprobs": self._logprobs,
                    }
                )
        else:
            part["refusal"] = text
            if not silent:
                self._emit({"type": "response.refusal.done", **base, "refusal": text})
        if not silent:
            self._emit({"type": "response.content_part.done", **base, "part": part})
        self._part = None
        self._buf = []
        self._logprobs = []

    def _close_message(self, status: str, *, silent: bool = False) -> None:
        msg = self._msg
        assert msg is not None
        if self._part is not None:
            self._close_part(silent=silent)
        msg["status"] = status
        if not silent:
            self._emit(
                {
                    "type": "response.output_item.done",
                    "output_index": self._items.index(msg),
                    "item": msg,
                }
            )
        self._msg = None

    # --- function calls -------------------------------------------------------------------

    def _tool_call_delta(self, tc: dict[str, Any], position: int) -> None:
        index = tc.get("index")
        if not isinstance(index, int):
            index = position
        function = tc.get("function")
        if not isinstance(function, dict):
            function = {}
        call_id = tc.get("id") if isinstance(tc.get("id"), str) and tc.get("id") else None
        name = function.get("name") if isinstance(function.get("name"), str) else None
        args = function.get("arguments") if isinstance(function.get("arguments"), str) else ""
        call = self._calls.get(index)
        if call is not None and call_id and call.call_id and call_id != call.call_id:
            call = None  # the same index reused for another call (some servers do)
        if call is None:
            call = _Call()
            self._close_open("completed")
            self._calls[index] = call
            self._call = call
            self._open = "call"
        elif call is not self._call:
            if not (call_id or name or args):
                return  # an empty fragment for a closed call carries nothing
            raise UpstreamStreamError(
                "The upstream interleaved fragments of a tool call that was already closed."
            )
        if call_id and not call.call_id:
            call.call_id = call_id
        if name and not call.name:
            call.name = name  # some upstreams repeat the full name on every fragment
        if call.item is None:
            if args:
                call.pending.append(args)
            if call.call_id and call.name:
                self._announce(call)
        elif args:
            self._call_delta(call, args)

    def _announce(self, call: _Call) -> None:
        # arguments start empty: every fragment is a delta, so the SDK never doubles one.
        if self._tool_map is None:
            self._tool_map = ToolMap.from_tools(self._tools)
        item = call_item(
            self._tool_map,
            new_id("fc_"),
            call.call_id or new_id("call_"),
            call.name or "",
            "",
            "in_progress",
        )
        if item["type"] == "custom_tool_call":
            call.decoder = CustomInputDecoder()
        call.item = item
        self._add_item(item)
        if call.pending:
            self._call_delta(call, "".join(call.pending))
            call.pending = []

    def _call_delta(self, call: _Call, args: str) -> None:
        item = call.item
        assert item is not None
        call.args.append(args)
        if call.decoder is not None:
            self._custom_delta(call, call.decoder.feed(args))
            return
        call.deltas += 1
        # An open call is always the last item.
        self._emit(
            {
                "type": "response.function_call_arguments.delta",
                "item_id": item["id"],
                "output_index": len(self._items) - 1,
                "delta": args,
            }
        )

    def _custom_delta(self, call: _Call, text: str) -> None:
        item = call.item
        assert item is not None
        if not text and call.deltas:
            return
        call.deltas += 1
        call.streamed.append(text)
        self._emit(
            {
                "type": "response.custom_tool_call_input.delta",
                "item_id": item["id"],
                "output_index": len(self._items) - 1,
                "delta": text,
            }
        )

    def _close_call(self, status: str, *, silent: bool = False) -> None:
        call = self._call
        assert call is not None
        self._call = None
        if call.item is None:
            if silent:
                return  # never announced: it cannot appear in the output
            self._announce(call)
        item = call.item
        assert item is not None
        if call.decoder is not None:
            self._close_custom_call(call, item, status, silent=silent)
            return
        if not silent and call.deltas == 0:
            self._call_delta(call, "")  # at least one delta per call (OR tool-calling-streaming)
        arguments = "".join(call.args)
        item["arguments"] = arguments
        item["status"] = status
        if not silent:
            output_index = self._items.index(item)
            self._emit(
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": item["id"],
                    "output_index": output_index,
                    "arguments": arguments,
                    "name": item["name"],
                }
            )
            self._emit(
                {"type": "response.output_item.done", "output_index": output_index, "item": item}
            )

    def _close_custom_call(
        self, call: _Call, item: dict[str, Any], status: str, *, silent: bool
    ) -> None:
        text = custom_input("".join(call.args))
        streamed = "".join(call.streamed)
        if not silent and (call.deltas == 0 or (text != streamed and text.startswith(streamed))):
            # The rest of the input (arguments that were not the usual JSON shape decode only
            # at the end), and at least one delta per call.
            call.deltas = 0
            self._custom_delta(call, text[len(streamed) :])
        item["input"] = text
        item["status"] = status
        if not silent:
            output_index = self._items.index(item)
            self._emit(
                {
                    "type": "response.custom_tool_call_input.done",
                    "item_id": item["id"],
                    "output_index": output_index,
                    "input": text,
                }
            )
            self._emit(
                {"type": "response.output_item.done", "output_index": output_index, "item": item}
            )

    # --- items ----------------------------------------------------------------------------

    def _add_item(self, item: dict[str, Any]) -> None:
        self._items.append(item)
        self._emit(
            {
                "type": "response.output_item.added",
                "output_index": len(self._items) - 1,
                "item": item,
            }
        )

    def _close_open(self, status: str, *, silent: bool = False) -> None:
        kind = self._open
        self._open = None
        if kind == "message":
            self._close_message(status, silent=silent)
        elif kind == "reasoning":
            self._close_reasoning(status, silent=silent)
        elif kind == "call":
            self._close_call(status, silent=silent)

    # --- terminal events ------------------------------------------------------------------

    def _final(self, status: str) -> dict[str, Any]:
        response = dict(self.skeleton)
        response["status"] = status
        response["output"] = self._items
        response["output_text"] = response_output_text(self._items)
        if self._service_tier is not None:
            response["service_tier"] = self._service_tier
        if isinstance(self._routing_metadata, dict):
            response["routing_metadata"] = self._routing_metadata
        self.response = response
        return response

    def finish(self) -> bytes:
        """End of the inner stream: close the open item and emit the terminal event."""
        if self.response is not None:
            return self._flush()
        if self._finish_reason is None and not self.done_seen:
            return self.fail(
                "upstream_error", "The upstream stream ended before it finished the response."
            )
        status, incomplete = finish_status(self._finish_reason)
        self._close_open("incomplete" if incomplete else "completed")
        response = self._final(status)
        response["incomplete_details"] = incomplete
        response["completed_at"] = int(time.time())
        response["usage"] = map_usage(self._usage)
        self._emit({"type": f"response.{status}", "response": response})
        if self._send_done:
            self._out.append(_DONE_LINE)
        return self._flush()

    def fail_with(self, error: Any, status: int | None = None) -> bytes:
        """Fail the stream with an upstream ``error`` object (or any truthy error value)."""
        return self.fail_payload(fault_payload(error, status=status))

    def fail(self, code: str, message: str, *, param: str | None = None) -> bytes:
        """Fail the stream with the registry ``code`` (``error`` then ``response.failed``)."""
        return self.fail_payload(error_payload(code, message, param))

    def fail_payload(self, payload: dict[str, Any]) -> bytes:
        """``error`` (flat and nested) then ``response.failed``, both carrying ``payload``.

        Open items end incomplete. The failed Response's ``error`` is the same registry payload
        as the event's, so a client reads one code wherever it looks.
        """
        if self.response is not None:
            return self._flush()
        self._close_open("incomplete", silent=True)
        self._emit(responses_error_event(payload, None))
        response = self._final("failed")
        response["usage"] = None if self._usage is None else map_usage(self._usage)
        response["error"] = payload
        self._emit({"type": "response.failed", "response": response})
        if self._send_done:
            self._out.append(_DONE_LINE)
        return self._flush()
