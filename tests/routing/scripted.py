"""Scripted ASGI providers for routing tests: each call's body is recorded."""

from __future__ import annotations

import json
from typing import Any

import anyio

from tests.support.asgi import read_body

Usage = tuple[int, int, int]


def chat_completion(model: str, text: str, usage: Usage) -> dict[str, Any]:
    prompt, completion, cached = usage
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
    }


def chat_chunks(model: str, text: str, usage: Usage, *, crlf: bool = False) -> list[bytes]:
    prompt, completion, cached = usage
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": model}
    chunks = [
        {**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        *(
            {**head, "choices": [{"index": 0, "delta": {"content": word}}], "usage": None}
            for word in text.split(" ")
        ),
        {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {
            **head,
            "choices": [],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": cached},
            },
        },
    ]
    sep = "\r\n" if crlf else "\n"
    out = [f"data: {json.dumps(c)}{sep}{sep}".encode() for c in chunks]
    out.append(f"data: [DONE]{sep}{sep}".encode())
    return out


def response_object(model: str, text: str, usage: Usage, status: str) -> dict[str, Any]:
    prompt, completion, cached = usage
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "model": model,
        "status": status,
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ]
        if status == "completed"
        else [],
        "usage": {
            "input_tokens": prompt,
            "output_tokens": completion,
            "total_tokens": prompt + completion,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens_details": {"reasoning_tokens": 0},
        }
        if status == "completed"
        else None,
    }


def response_events(model: str, text: str, usage: Usage) -> list[bytes]:
    def event(kind: str, seq: int, **data: Any) -> bytes:
        body = {"type": kind, "sequence_number": seq, **data}
        return f"event: {kind}\ndata: {json.dumps(body)}\n\n".encode()

    return [
        event("response.created", 0, response=response_object(model, "", usage, "in_progress")),
        event(
            "response.output_text.delta",
            1,
            item_id="msg_1",
            output_index=0,
            content_index=0,
            delta=text,
        ),
        event("response.completed", 2, response=response_object(model, text, usage, "completed")),
    ]


class Scripted:
    """A provider app whose behaviour is set per test.

    ``behaviour``: ``ok`` | ``status`` (with ``status``/``retry_after``) | ``hang`` | ``raise`` |
    ``midstream`` (first chunk then an exception) | ``drop`` (first chunk then EOF) |
    ``error_frame`` (first chunk then an in-band error + [DONE]) | ``wait_disconnect``.
    """

    def __init__(
        self,
        name: str,
        behaviour: str = "ok",
        *,
        text: str | None = None,
        usage: Usage = (10, 5, 0),
        status: int = 500,
        retry_after: str | None = None,
        crlf: bool = False,
    ) -> None:
        self.name = name
        self.behaviour = behaviour
        self.text = text or f"Hello from {name}"
        self.usage = usage
        self.status = status
        self.retry_after = retry_after
        self.crlf = crlf
        self.calls: list[dict[str, Any]] = []
        self.headers: list[dict[bytes, bytes]] = []
        self.cancelled = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = await read_body(receive)
        headers = dict(scope["headers"])
        assert int(headers[b"content-length"]) == len(body)
        payload = json.loads(body)
        self.calls.append(payload)
        self.headers.append(headers)
        responses = scope["path"].endswith("/responses")
        model = payload["model"]
        try:
            await self._respond(send, receive, model, payload, responses)
        except anyio.get_cancelled_exc_class():
            self.cancelled = True
            raise

    async def _respond(
        self, send: Any, receive: Any, model: str, payload: dict[str, Any], responses: bool
    ) -> None:
        behaviour = self.behaviour
        if behaviour == "hang":
            await anyio.sleep_forever()
        if behaviour == "raise":
            raise ConnectionRefusedError("connection refused")
        if behaviour == "status":
            error = {
                "error": {
                    "message": f"{self.name} is unhappy",
                    "type": "api_error",
                    "code": "upstream_error",
                    "param": None,
                }
            }
            headers = [(b"content-type", b"application/json")]
            if self.retry_after is not None:
                headers.append((b"retry-after", self.retry_after.encode()))
            await send({"type": "http.response.start", "status": self.status, "headers": headers})
            await send({"type": "http.response.body", "body": json.dumps(error).encode()})
            return
        if not payload.get("stream"):
            obj = (
                response_object(model, self.text, self.usage, "completed")
                if responses
                else chat_completion(model, self.text, self.usage)
            )
            raw = json.dumps(obj).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(raw)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": raw})
            return
        events = (
            response_events(model, self.text, self.usage)
            if responses
            else chat_chunks(model, self.text, self.usage, crlf=self.crlf)
        )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        if behaviour in ("midstream", "drop", "error_frame", "wait_disconnect"):
            await send({"type": "http.response.body", "body": events[0], "more_body": True})
            if behaviour == "midstream":
                raise ConnectionResetError("upstream reset")
            if behaviour == "error_frame":
                frame = {
                    "error": {"message": "boom", "type": "api_error", "code": "upstream_error"}
                }
                tail = f"data: {json.dumps(frame)}\n\ndata: [DONE]\n\n".encode()
                await send({"type": "http.response.body", "body": tail})
                return
            if behaviour == "wait_disconnect":
                # Sees the disconnect but ignores it: only routing can stop this call.
                await receive()
                await anyio.sleep_forever()
            await send({"type": "http.response.body", "body": b""})
            return
        for event in events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
