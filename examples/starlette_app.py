"""A Starlette app (chat route, static files, a page) behind the whole akgate stack.

Run it (from the repository root)::

    pip install -e '.[server]'                          # akgate, uvicorn (and Starlette)
    export AKGATE_KEY=$(akgate keys create --name me)   # an ak_live_ key (kept hashed in ~/.akgate)
    uvicorn examples.starlette_app:app

``/v1/responses`` is served by the Responses adapter over the app's own
``/v1/chat/completions``; ``/`` and ``/static/...`` are the app's and need no key.
"""

from __future__ import annotations

import time
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from akgate.context import get_context
from akgate.stack import Gateway

STATIC = Path(__file__).parent / "static"


async def chat_completions(request: Request) -> JSONResponse:
    body = await request.json()
    last = body["messages"][-1].get("content", "")
    text = f"Starlette says: {last}"
    return JSONResponse(
        {
            "id": f"chatcmpl-{time.time_ns()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
        }
    )


async def whoami(request: Request) -> JSONResponse:
    ctx = get_context(request.scope)
    identity = ctx.identity if ctx is not None else None
    return JSONResponse({"key_id": identity.key_id if identity else None})


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("An ordinary Starlette page")


app = Starlette(
    routes=[
        Route("/", home),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/whoami", whoami),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ],
    # The whole stack as one middleware; the app serves the model "starlette-echo".
    middleware=[Middleware(Gateway, models=["starlette-echo"])],
)
