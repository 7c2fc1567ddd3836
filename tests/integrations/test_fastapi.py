"""FastAPI: each layer and the whole stack through ``app.add_middleware``, app features intact."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from akgate.adapter import ResponsesAdapter
from akgate.auth import APIKeyAuth, MemoryKeyStore
from akgate.routing import Catalog, Routing
from akgate.stack import Gateway
from akgate.validation import RequestValidation

from .apps import http_scope, make_app, run_asgi

CHAT = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
ECHO_CATALOG = {
    "models": {"echo": {"providers": [{"name": "app", "input_price": 0, "output_price": 0}]}}
}


def client(app: Any, key: str | None = None) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
    )


@pytest.fixture
def events() -> list[str]:
    return []


@pytest.fixture
def app(events: list[str]) -> FastAPI:
    return make_app(events)


@pytest.fixture
def gated(app: FastAPI, key: str) -> FastAPI:
    app.add_middleware(Gateway, keys=[key], models=["echo"])
    return app


@pytest.fixture
async def sdk(gated: FastAPI, key: str) -> AsyncIterator[openai.AsyncOpenAI]:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=gated), base_url="http://t")
    async with openai.AsyncOpenAI(
        api_key=key, base_url="http://t/v1", http_client=http, max_retries=0
    ) as sdk:
        yield sdk


# -- each layer alone --------------------------------------------------------------------------


async def test_auth_alone_via_add_middleware_rejects_a_missing_key(app: FastAPI, key: str) -> None:
    app.add_middleware(APIKeyAuth, store=MemoryKeyStore.from_keys([key]))
    async with client(app) as http:
        response = await http.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


async def test_validation_alone_via_add_middleware_rejects_a_bad_body(app: FastAPI) -> None:
    app.add_middleware(RequestValidation)
    async with client(app) as http:
        response = await http.post("/v1/chat/completions", json={"model": "echo"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"


async def test_routing_alone_via_add_middleware_adds_routing_metadata(app: FastAPI) -> None:
    app.add_middleware(Routing, catalog=ECHO_CATALOG)
    async with client(app) as http:
        response = await http.post("/v1/chat/completions", json=CHAT)
    assert response.json()["routing_metadata"]["provider"] == "app"


async def test_adapter_alone_via_add_middleware_serves_responses(app: FastAPI) -> None:
    app.add_middleware(ResponsesAdapter)
    async with client(app) as http:
        response = await http.post("/v1/responses", json={"model": "echo", "input": "hi"})
    assert response.json()["output"][0]["content"][0]["text"] == "hello from the app"


# -- the whole stack ---------------------------------------------------------------------------


async def test_layers_added_routing_first_and_auth_last_form_the_stack(
    app: FastAPI, key: str
) -> None:
    app.add_middleware(Routing, catalog=ECHO_CATALOG)  # innermost: added first
    app.add_middleware(RequestValidation)
    app.add_middleware(APIKeyAuth, store=MemoryKeyStore.from_keys([key]))  # outermost: last
    async with client(app) as anonymous:
        # Auth answers before validation looks at the (invalid) body.
        assert (await anonymous.post("/v1/chat/completions", json={})).status_code == 401
    async with client(app, key) as http:
        response = await http.post("/v1/responses", json={"model": "echo", "input": "hi"})
    assert response.json()["routing_metadata"]["provider"] == "app"


async def test_gateway_class_adds_every_layer_in_one_call(gated: FastAPI, key: str) -> None:
    async with client(gated) as anonymous:
        assert (await anonymous.post("/v1/chat/completions", json=CHAT)).status_code == 401
    async with client(gated, key) as http:
        invalid = await http.post("/v1/chat/completions", json={"model": "echo"})
        ok = await http.post("/v1/chat/completions", json=CHAT)
    assert invalid.status_code == 400
    assert ok.json()["routing_metadata"]["model_canonical"] == "echo"


async def test_app_routes_outside_v1_need_no_key(gated: FastAPI) -> None:
    async with client(gated) as http:
        response = await http.get("/")
    assert response.json() == {"page": "home"}


async def test_identity_is_readable_in_a_route(gated: FastAPI, key: str) -> None:
    async with client(gated, key) as http:
        response = await http.get("/v1/whoami")
    assert response.json() == {"key_id": key[:16]}


async def test_background_tasks_run_behind_the_gateway(
    gated: FastAPI, key: str, events: list[str]
) -> None:
    async with client(gated, key) as http:
        await http.get("/v1/whoami")
    assert "task" in events


def test_lifespan_events_reach_the_app_through_the_gateway(
    gated: FastAPI, events: list[str]
) -> None:
    with TestClient(gated):
        assert events == ["startup"]
    assert events == ["startup", "shutdown"]


def test_websocket_route_works_through_the_gateway(gated: FastAPI) -> None:
    with TestClient(gated) as test_client, test_client.websocket_connect("/ws") as ws:
        ws.send_text("ping")
        assert ws.receive_text() == "echo:ping"


async def test_file_response_keeps_pathsend_through_the_gateway(
    tmp_path: Path, events: list[str], key: str
) -> None:
    path = tmp_path / "hello.txt"
    path.write_text("hello")
    app = make_app(events, static_file=path)
    app.add_middleware(Gateway, keys=[key], models=["echo"])
    scope = http_scope("/file", extensions={"http.response.pathsend": {}})
    messages = await run_asgi(app, scope)
    assert [m["type"] for m in messages] == ["http.response.start", "http.response.pathsend"]
    assert messages[1]["path"] == str(path)


async def test_catalog_can_be_given_to_the_gateway_class(app: FastAPI, key: str) -> None:
    app.add_middleware(Gateway, keys=[key], catalog=Catalog.from_dict(ECHO_CATALOG), demo=False)
    async with client(app, key) as http:
        response = await http.post("/v1/chat/completions", json=CHAT)
    assert response.json()["routing_metadata"]["provider"] == "app"


# -- the openai SDK end to end -------------------------------------------------------------------


async def test_openai_sdk_gets_a_response_over_the_apps_chat_route(
    sdk: openai.AsyncOpenAI, events: list[str]
) -> None:
    response = await sdk.responses.create(model="echo", input="Hello")
    assert response.output_text == "hello from the app"
    assert events == ["chat:echo"]


async def test_openai_sdk_streams_a_response_over_the_apps_chat_route(
    sdk: openai.AsyncOpenAI,
) -> None:
    stream = await sdk.responses.create(model="echo", input="Hello", stream=True)
    kinds = [event.type async for event in stream]
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") == 4


async def test_openai_sdk_is_refused_with_a_wrong_key(gated: FastAPI) -> None:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=gated), base_url="http://t")
    async with openai.AsyncOpenAI(
        api_key="sk-wrong", base_url="http://t/v1", http_client=http, max_retries=0
    ) as sdk:
        with pytest.raises(openai.AuthenticationError):
            await sdk.responses.create(model="echo", input="Hello")
