"""An ordinary page and an OpenAI-compatible chat-completions view (a stand-in for your code)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from akgate.contrib.django import get_identity


async def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<h1>An ordinary Django page</h1>")


def _reply(body: dict[str, Any]) -> str:
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    content = users[-1].get("content", "") if users else ""
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return f"Django says: {content}"


async def _chunks(completion_id: str, model: str, text: str) -> AsyncIterator[str]:
    base = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": word + " "} for word in text.split(" ")]
    for delta in deltas:
        choice = {"index": 0, "delta": delta, "finish_reason": None}
        yield f"data: {json.dumps({**base, 'choices': [choice]})}\n\n"
    done = {"index": 0, "delta": {}, "finish_reason": "stop"}
    yield f"data: {json.dumps({**base, 'choices': [done]})}\n\n"
    yield "data: [DONE]\n\n"


@csrf_exempt  # API clients send a bearer key, not a CSRF cookie
@require_POST
async def chat_completions(request: HttpRequest) -> HttpResponse:
    """``POST /v1/chat/completions``: the gateway has checked the key and the body already."""
    body = json.loads(request.body)
    text = _reply(body)
    completion_id = f"chatcmpl-{time.time_ns()}"
    if body.get("stream"):
        response = StreamingHttpResponse(
            _chunks(completion_id, body["model"], text), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-store"
        return response
    words = len(text.split())
    return JsonResponse(
        {
            "id": completion_id,
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
            "usage": {"prompt_tokens": 5, "completion_tokens": words, "total_tokens": 5 + words},
        }
    )


async def whoami(request: HttpRequest) -> HttpResponse:
    """``GET /v1/whoami``: any Django view under ``/v1`` sees the caller's identity."""
    identity = get_identity(request)
    return JsonResponse({"key_id": identity.key_id if identity else None})
