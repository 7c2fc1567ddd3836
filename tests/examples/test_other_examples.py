"""examples/starlette_app.py, plain_asgi.py, upstream_proxy.py and the Django project."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import httpx
import pytest

from akgate.providers import DemoModel
from tests.integrations.django_setup import setup_django
from tests.support.servers import run_uvicorn


def client(app: Any, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://testserver",
        headers={"authorization": f"Bearer {key}"},
    )


async def test_starlette_example_serves_responses_and_static_files(
    key: str, load: Callable[[str], ModuleType]
) -> None:
    module = load("examples.starlette_app")
    async with client(module.app, key) as http:
        response = await http.post("/v1/responses", json={"model": "starlette-echo", "input": "Hi"})
        static = await http.get("/static/hello.txt", headers={"authorization": ""})
    assert response.json()["output"][0]["content"][0]["text"] == "Starlette says: Hi"
    assert static.text == "hello from a static file\n"


async def test_plain_asgi_example_serves_responses(
    key: str, load: Callable[[str], ModuleType]
) -> None:
    module = load("examples.plain_asgi")
    async with client(module.app, key) as http:
        response = await http.post("/v1/responses", json={"model": "plain-echo", "input": "Hi"})
        anonymous = await http.post(
            "/v1/responses",
            headers={"authorization": ""},
            json={"model": "plain-echo", "input": "Hi"},
        )
    assert response.json()["output"][0]["content"][0]["text"] == "Plain ASGI says: Hi"
    assert anonymous.status_code == 401


async def test_upstream_proxy_example_fronts_a_remote_server(
    key: str, load: Callable[[str], ModuleType], monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_uvicorn(DemoModel()) as remote:
        monkeypatch.setenv("UPSTREAM_BASE_URL", remote + "/v1")
        monkeypatch.setenv("UPSTREAM_API_KEY", "sk-upstream")
        monkeypatch.setenv("UPSTREAM_MODELS", "demo")
        module = load("examples.upstream_proxy")
        try:
            async with client(module.app, key) as http:
                response = await http.post("/v1/responses", json={"model": "demo", "input": "Hi"})
        finally:
            await module.upstream.aclose()
    body = response.json()
    assert body["status"] == "completed"
    assert body["routing_metadata"]["provider"] == "app"


async def test_django_example_asgi_application(key: str, load: Callable[[str], ModuleType]) -> None:
    setup_django()
    module = load("chatsite.asgi")
    async with client(module.application, key) as http:
        response = await http.post("/v1/responses", json={"model": "django-echo", "input": "Hi"})
        page = await http.get("/")
    assert response.json()["output"][0]["content"][0]["text"] == "Django says: Hi"
    assert page.status_code == 200
