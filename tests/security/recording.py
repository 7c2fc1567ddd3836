"""A fake OpenAI-compatible upstream that records what reaches it."""

from __future__ import annotations

import json
import threading
from typing import Any

from akgate._types import Receive, Scope, Send


class Recorder:
    """A fake OpenAI-compatible upstream that records every request it receives."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        try:
            model = json.loads(body).get("model") if body else None
        except ValueError:
            model = None
        with self.lock:
            self.seen.append(
                {
                    "method": scope["method"],
                    "path": scope["path"],
                    "raw_path": scope.get("raw_path"),
                    "query": scope.get("query_string", b"").decode("latin-1"),
                    "authorization": headers.get("authorization"),
                    "model": model,
                }
            )
        answer = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": model or "x",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "hi"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        data = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})

    def count(self) -> int:
        with self.lock:
            return len(self.seen)

    def since(self, start: int) -> list[dict[str, Any]]:
        with self.lock:
            return self.seen[start:]
