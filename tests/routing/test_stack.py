"""Routing with the real demo model, the Responses adapter, validation and UpstreamProvider."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import auriko
import httpx
import pytest
from auriko.route_types import RoutingOptions
from httpx_sse import aconnect_sse
from openai import AsyncOpenAI

from akgate.providers import DemoModel, UpstreamProvider
from akgate.routing import Catalog, Provider, Routing
from akgate.validation import RequestValidation
from tests.routing.conftest import client
from tests.support.servers import free_port, run_uvicorn

MSG = [{"role": "user", "content": "Say hello"}]


async def bare(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def two_provider_catalog(local: str = "demo", remote: str = "remote") -> Catalog:
    return Catalog.from_dict({"models": {
        "demo": {"providers": [
            {"name": local, "model_id": "demo", "input_price": 0.5, "output_price": 1.5},
            {"name": remote, "model_id": "demo", "input_price": 0.4, "output_price": 1.2},
        ]},
        "demo-reasoning": {"providers": [
            {"name": remote, "model_id": "demo-reasoning", "input_price": 1.0,
             "output_price": 4.0, "capabilities": {"reasoning": True}},
        ]},
    }})  # fmt: skip


@pytest.fixture(scope="module")
def demo_server() -> Iterator[str]:
    with run_uvicorn(DemoModel()) as url:
        yield url


async def test_default_routing_serves_demo_out_of_the_box() -> None:
    async with client(Routing(bare)) as c:
        r = await c.post("/v1/chat/completions", json={"model": "demo", "messages": MSG})
    meta = r.json()["routing_metadata"]
    assert (meta["provider"], meta["model_canonical"]) == ("demo", "demo")
    assert meta["cost"]["usd"] > 0
    assert auriko.parse_routing_metadata(httpx_json_model(r.json())) is not None


def httpx_json_model(body: dict[str, Any]) -> Any:
    from openai.types.chat import ChatCompletion

    return ChatCompletion.model_validate(body)


async def test_demo_stream_gets_final_metadata_chunk() -> None:
    body = {"model": "demo", "messages": MSG, "stream": True}
    async with (
        client(Routing(bare)) as c,
        aconnect_sse(c, "POST", "/v1/chat/completions", json=body) as source,
    ):
        data = [e.data async for e in source.aiter_sse()]
    final = json.loads(data[-2])
    assert data[-1] == "[DONE]"
    assert final["choices"] == []
    assert final["usage"]["completion_tokens"] > 0
    assert final["routing_metadata"]["ttft_ms"] >= 0


async def test_responses_over_chat_only_provider_uses_adapter() -> None:
    async with client(Routing(bare)) as c:
        r = await c.post("/v1/responses", json={"model": "demo", "input": "Say hello"})
    body = r.json()
    assert body["object"] == "response"
    assert body["routing_metadata"]["provider"] == "demo"
    assert body["routing_metadata"]["cost"]["usd"] > 0


async def test_responses_stream_over_adapter_terminal_event() -> None:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=Routing(bare)))
    sdk = AsyncOpenAI(api_key="ak_test_x", base_url="http://test/v1", http_client=http)
    stream = await sdk.responses.create(model="demo", input="Say hello", stream=True)
    received = [event async for event in stream]
    assert received[-1].type == "response.completed"
    assert "routing_metadata" not in (received[0].response.model_extra or {})
    meta = auriko.parse_routing_metadata(received[-1].response)
    assert meta is not None
    assert meta.ttft_ms is not None


async def test_validation_layer_warnings_reach_metadata() -> None:
    app = RequestValidation(Routing(bare))
    body = {"model": "demo", "messages": MSG, "extensions": {"demo": {"api_key": "sk-x"}}}
    async with client(app) as c:
        r = await c.post("/v1/chat/completions", json=body)
    warnings = r.json()["routing_metadata"]["warnings"]
    assert [w["code"] for w in warnings] == ["extensions.demo.api_key"]


async def test_demo_fault_falls_back_to_healthy_provider() -> None:
    app = Routing(
        bare,
        catalog=two_provider_catalog(local="broken", remote="healthy"),
        providers=[
            Provider("broken", DemoModel(fault="status=500")),
            Provider("healthy", DemoModel()),
        ],
        app_provider=None,
        default_optimize="balanced",
    )
    body = {"model": "demo", "messages": MSG, "gateway": {"routing": {"prefer": "broken"}}}
    async with client(app) as c:
        r = await c.post("/v1/chat/completions", json=body)
    assert r.json()["routing_metadata"]["provider"] == "healthy"


async def test_demo_midstream_error_is_not_spliced() -> None:
    app = Routing(
        bare,
        catalog=two_provider_catalog(local="broken", remote="healthy"),
        providers=[
            Provider("broken", DemoModel(fault="midstream=1")),
            Provider("healthy", DemoModel()),
        ],
        app_provider=None,
    )
    body = {
        "model": "demo",
        "messages": MSG,
        "stream": True,
        "gateway": {"routing": {"prefer": "broken"}},
    }
    async with client(app) as c:
        r = await c.post("/v1/chat/completions", json=body)
    lines = [line[6:] for line in r.text.split("\n") if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    assert "error" in json.loads(lines[-2])
    assert "routing_metadata" not in r.text


@pytest.mark.server
async def test_upstream_provider_over_real_http(demo_server: str) -> None:
    upstream = UpstreamProvider(demo_server + "/v1", api_key="sk-upstream")
    app = Routing(
        bare,
        catalog=Catalog.demo(provider="remote"),
        providers=[Provider("remote", upstream)],
        app_provider=None,
    )
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    sdk = AsyncOpenAI(api_key="ak_test_x", base_url="http://test/v1", http_client=http)
    completion = await sdk.chat.completions.create(model="demo", messages=MSG)
    meta = auriko.parse_routing_metadata(completion)
    assert meta is not None
    assert meta.provider == "remote"
    stream = await sdk.chat.completions.create(model="demo", messages=MSG, stream=True)
    chunks = [chunk async for chunk in stream]
    assert auriko.parse_routing_metadata(chunks[-1]) is not None
    await upstream.aclose()


@pytest.mark.server
async def test_upstream_connection_refused_falls_back(demo_server: str) -> None:
    dead = UpstreamProvider(f"http://127.0.0.1:{free_port()}/v1")
    live = UpstreamProvider(demo_server + "/v1")
    app = Routing(
        bare,
        catalog=two_provider_catalog(local="live", remote="dead"),
        providers=[Provider("dead", dead), Provider("live", live)],
        app_provider=None,
    )
    async with client(app) as c:
        r = await c.post("/v1/chat/completions", json={"model": "demo", "messages": MSG})
    assert r.json()["routing_metadata"]["provider"] == "live"
    await dead.aclose()
    await live.aclose()


@pytest.mark.server
async def test_upstream_all_down_is_502() -> None:
    dead = UpstreamProvider(f"http://127.0.0.1:{free_port()}/v1")
    app = Routing(
        bare,
        catalog=Catalog.demo(provider="dead"),
        providers=[Provider("dead", dead)],
        app_provider=None,
    )
    async with client(app) as c:
        r = await c.post("/v1/chat/completions", json={"model": "demo", "messages": MSG})
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "upstream_error"
    await dead.aclose()


@pytest.mark.server
async def test_sdks_drive_multi_model_routing_over_two_providers(demo_server: str) -> None:
    upstream = UpstreamProvider(demo_server + "/v1")
    app = RequestValidation(
        Routing(
            DemoModel(),
            catalog=two_provider_catalog(local="app", remote="remote"),
            providers=[Provider("remote", upstream)],
        )
    )
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    openai_sdk = AsyncOpenAI(api_key="ak_test_x", base_url="http://test/v1", http_client=http)
    completion = await openai_sdk.chat.completions.create(
        model="",
        messages=MSG,
        extra_body={
            "model": None,
            "gateway": {"models": ["demo-reasoning", "demo"], "routing": {"mode": "fallback"}},
        },
    )
    meta = auriko.parse_routing_metadata(completion)
    assert meta is not None
    assert (meta.provider, meta.model_canonical) == ("remote", "demo-reasoning")

    sdk = auriko.AsyncClient(api_key="ak_test_x", base_url="http://test/v1")
    sdk._httpx = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=sdk.base_url, headers=sdk._default_headers
    )
    result = await sdk.chat.completions.create(
        messages=MSG,
        gateway={
            "models": ["demo", "demo-reasoning"],
            "routing": RoutingOptions(optimize="cost", providers=["app"]).to_dict(),
        },
    )
    assert result.routing_metadata is not None
    assert (result.routing_metadata.provider, result.routing_metadata.model_canonical) == (
        "app",
        "demo",
    )
    await upstream.aclose()
