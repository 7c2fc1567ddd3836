"""Any ASGI callable behind the stack: here a 30-line chat-completions app with no framework.

Run it (from the repository root)::

    pip install -e '.[server]'
    export AKGATE_KEY=$(akgate keys create --name me)   # or keys in memory only:
    # export AKGATE_API_KEYS=$(akgate keys generate)
    uvicorn examples.plain_asgi:app
"""

from __future__ import annotations

import json
import time
from typing import Any

from akgate.stack import gateway


async def chat_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer ``POST /v1/chat/completions`` (anything else: 404)."""
    if scope["type"] == "lifespan":  # nothing to set up; answer the server politely
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http" or scope["path"] != "/v1/chat/completions":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    request = json.loads(b"".join(chunks))
    text = f"Plain ASGI says: {request['messages'][-1]['content']}"
    body = json.dumps(
        {
            "id": f"chatcmpl-{time.time_ns()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
        }
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# auth -> validation -> routing -> Responses adapter -> chat_app, which serves "plain-echo".
app = gateway(chat_app, models=["plain-echo"])
