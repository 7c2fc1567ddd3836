"""A FastAPI app with its own chat-completions route, behind the whole akgate stack.

Run it (from the repository root)::

    pip install -e '.[server,fastapi]'                  # akgate, uvicorn and FastAPI
    export AKGATE_KEY=$(akgate keys create --name me)   # an ak_live_ key (kept hashed in ~/.akgate)
    uvicorn examples.fastapi_app:app

Then call the app's chat route, or the Responses API the adapter serves over it::

    curl http://127.0.0.1:8000/v1/responses -H "Authorization: Bearer $AKGATE_KEY" \\
         -H 'Content-Type: application/json' -d '{"model": "echo", "input": "Hello"}'

The app's own routes (``/``, ``/ws``) are untouched by the gateway; ``/v1/whoami`` is the app's
own route too, behind the key check.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import BackgroundTasks, FastAPI, Request, WebSocket
from fastapi.responses import StreamingResponse

from akgate.context import get_context
from akgate.stack import Gateway

#: What happened in the app: lifespan events and background tasks (read by the tests).
EVENTS: list[str] = []


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    EVENTS.append("startup")
    yield
    EVENTS.append("shutdown")


app = FastAPI(lifespan=lifespan)


def reply_to(messages: list[dict[str, Any]]) -> str:
    last = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    content = last.get("content", "")
    if isinstance(content, list):  # content parts
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return f"You said: {content}"


def sse_chunks(completion_id: str, model: str, text: str) -> Iterator[str]:
    base = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    first = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
    yield f"data: {json.dumps({**base, 'choices': [first]})}\n\n"
    for word in text.split(" "):
        delta = {"index": 0, "delta": {"content": word + " "}, "finish_reason": None}
        yield f"data: {json.dumps({**base, 'choices': [delta]})}\n\n"
    last = {"index": 0, "delta": {}, "finish_reason": "stop"}
    yield f"data: {json.dumps({**base, 'choices': [last]})}\n\n"
    yield "data: [DONE]\n\n"


@app.post("/v1/chat/completions", response_model=None)
async def chat_completions(request: Request) -> dict[str, Any] | StreamingResponse:
    """An OpenAI-compatible chat route (a stand-in for your model code)."""
    body = await request.json()
    text = reply_to(body["messages"])
    completion_id = "chatcmpl-" + str(time.time_ns())
    if body.get("stream"):
        return StreamingResponse(
            sse_chunks(completion_id, body["model"], text), media_type="text/event-stream"
        )
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": 5,
            "completion_tokens": len(text.split()),
            "total_tokens": 5 + len(text.split()),
        },
    }


@app.get("/v1/whoami")
async def whoami(request: Request, tasks: BackgroundTasks) -> dict[str, Any]:
    """A route of the app's own under /v1: the gateway authenticated the caller first."""
    ctx = get_context(request.scope)
    identity = ctx.identity if ctx is not None else None
    tasks.add_task(EVENTS.append, "whoami-task")
    return {
        "key_id": identity.key_id if identity else None,
        "request_id": ctx.request_id if ctx else None,
    }


@app.get("/")
async def home() -> dict[str, str]:
    return {"hello": "world"}


@app.websocket("/ws")
async def echo_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(await websocket.receive_text())
    await websocket.close()


# One line adds auth -> validation -> routing -> Responses adapter, in that order. The app serves
# the model "echo" (the embedded demo models "demo" and "demo-reasoning" are there too).
app.add_middleware(Gateway, models=["echo"])
