"""Starlette: ``Middleware(Gateway, ...)`` in the constructor, static files and identity intact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from akgate.context import get_context
from akgate.stack import Gateway

from .apps import completion, http_scope, run_asgi


async def chat(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse(completion(body["model"], "from starlette"))


async def whoami(request: Request) -> JSONResponse:
    ctx = get_context(request.scope)
    return JSONResponse({"key_id": ctx.identity.key_id if ctx and ctx.identity else None})


def make_app(key: str, static: Path) -> Starlette:
    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/whoami", whoami),
            Mount("/static", StaticFiles(directory=static)),
        ],
        middleware=[Middleware(Gateway, keys=[key], models=["echo"])],
    )


def client(app: Any, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://t",
        headers={"authorization": f"Bearer {key}"},
    )


async def test_responses_served_over_a_starlette_chat_route(key: str, tmp_path: Path) -> None:
    async with client(make_app(key, tmp_path), key) as http:
        response = await http.post("/v1/responses", json={"model": "echo", "input": "hi"})
    assert response.json()["output"][0]["content"][0]["text"] == "from starlette"


async def test_identity_is_readable_in_a_starlette_route(key: str, tmp_path: Path) -> None:
    async with client(make_app(key, tmp_path), key) as http:
        response = await http.get("/v1/whoami")
    assert response.json() == {"key_id": key[:16]}


async def test_static_files_keep_pathsend_behind_the_gateway(key: str, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("static")
    scope = http_scope("/static/a.txt", extensions={"http.response.pathsend": {}})
    messages = await run_asgi(make_app(key, tmp_path), scope)
    assert messages[-1] == {"type": "http.response.pathsend", "path": str(tmp_path / "a.txt")}
