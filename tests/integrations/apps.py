"""Small apps the integration tests wrap: a FastAPI app with a chat route and the usual extras."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import BackgroundTasks, FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, StreamingResponse

from akgate.context import get_context


def completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


def chunks(model: str, words: list[str]) -> Iterator[str]:
    base = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1, "model": model}
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": w} for w in words]
    for delta in deltas:
        yield f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': delta}]})}\n\n"
    end = {"index": 0, "delta": {}, "finish_reason": "stop"}
    yield f"data: {json.dumps({**base, 'choices': [end]})}\n\n"
    yield "data: [DONE]\n\n"


def make_app(events: list[str], static_file: Path | None = None) -> FastAPI:
    """A FastAPI app serving chat completions; ``events`` records lifespan and tasks."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request) -> Any:
        body = await request.json()
        events.append(f"chat:{body['model']}")
        text = "hello from the app"
        if body.get("stream"):
            return StreamingResponse(
                chunks(body["model"], text.split(" ")), media_type="text/event-stream"
            )
        return completion(body["model"], text)

    @app.get("/v1/whoami")
    async def whoami(request: Request, tasks: BackgroundTasks) -> dict[str, Any]:
        ctx = get_context(request.scope)
        tasks.add_task(events.append, "task")
        return {"key_id": ctx.identity.key_id if ctx and ctx.identity else None}

    @app.get("/")
    async def home() -> dict[str, str]:
        return {"page": "home"}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("echo:" + await websocket.receive_text())
        await websocket.close()

    if static_file is not None:

        @app.get("/file")
        async def file() -> FileResponse:
            return FileResponse(static_file)

    return app


async def run_asgi(app: Any, scope: dict[str, Any], body: bytes = b"") -> list[dict[str, Any]]:
    """Call ``app`` once with a hand-built scope; returns every message it sent."""
    sent: list[dict[str, Any]] = []
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def http_scope(path: str, method: str = "GET", **extra: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
        **extra,
    }
