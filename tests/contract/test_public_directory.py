"""The public discovery endpoints, read by the auriko SDK: directory, registry models, providers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import auriko
import httpx

from akgate.auth._keys import generate_key
from akgate.routing import Catalog, Provider, Routing
from akgate.stack import gateway

from .conftest import ChatApp

SECRET = "sk-upstream-secret-0123456789"
BASE_URL = "http://10.1.2.3:9999/private/v1"

CATALOG = {
    "models": {
        "split": {
            "display_name": "Split",
            "family": "split-family",
            "author": "acme",
            "aliases": ["split-latest"],
            "providers": [
                {"name": "chatty", "model_id": "split-chat", "input_price": 1.0,
                 "output_price": 2.0, "cached_input_price": 0.1, "context_window": 8000,
                 "max_output_tokens": 1000, "endpoints": ["chat_completions"],
                 "supported_parameters": ["temperature", "seed"], "tier": "flex"},
                {"name": "native", "input_price": 0.0, "output_price": 0.0,
                 "endpoints": ["responses"], "data_policy": "zdr",
                 "capabilities": {"vision": True}},
            ],
        }
    }
}  # fmt: skip


def routing(**options: Any) -> Routing:
    providers = [
        Provider.upstream("chatty", BASE_URL, api_key=SECRET),
        Provider("native", ChatApp(), endpoints=frozenset({"responses"}), data_policy="zdr"),
    ]
    return Routing(
        ChatApp(),
        catalog=Catalog.from_dict(CATALOG),
        providers=providers,
        app_provider=None,
        **options,
    )


@asynccontextmanager
async def sdk_for(app: Any) -> AsyncIterator[auriko.AsyncClient]:
    sdk = auriko.AsyncClient(api_key="ak_live_unused", base_url="http://gateway/v1")
    sdk._httpx = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=sdk.base_url, headers=sdk._default_headers
    )
    async with sdk._httpx:
        yield sdk


async def test_the_auriko_sdk_reads_the_directory() -> None:
    async with sdk_for(routing()) as sdk:
        directory = await sdk.models.list_directory()
    model = directory.models["split"]
    assert (model.family, model.display_name, model.author) == ("split-family", "Split", "acme")
    assert model.aliases == ["split-latest"]
    chatty, native = model.providers
    assert (chatty.provider, chatty.provider_model_id) == ("chatty", "split-chat")
    assert (chatty.context_window, chatty.max_output_tokens) == (8000, 1000)
    assert chatty.supported_endpoints == ["chat_completions"]
    assert native.supported_endpoints == ["responses"]
    assert chatty.supported_parameters == ["seed", "temperature"]
    assert native.supported_parameters is None
    assert chatty.tiers is not None
    tier = chatty.tiers[0]
    assert (tier.name, tier.input_price, tier.output_price, tier.cache_read_price) == (
        "flex",
        1.0,
        2.0,
        0.1,
    )
    assert native.capabilities is not None
    assert native.capabilities["vision"] is True
    assert native.input_modalities == ["text", "image"]
    assert native.data_policy == "zdr"
    assert directory.generated_at.endswith("Z")


async def test_the_auriko_sdk_reads_the_registry() -> None:
    async with sdk_for(routing()) as sdk:
        models = await sdk.models.list_registry()
        providers = await sdk.models.list_providers()
    assert models.count == 1
    (model,) = models.models
    assert (model.id, model.providers, model.has_free_provider) == (
        "split",
        ["chatty", "native"],
        True,
    )
    assert model.capabilities["vision"] is True
    assert providers.count == 2
    assert [(p.id, p.data_policy) for p in providers.providers] == [
        ("chatty", "none"),
        ("native", "zdr"),
    ]


async def test_public_endpoints_need_no_key_and_list_no_credentials() -> None:
    key = generate_key("live")[0]
    stack = gateway(ChatApp(), keys=[key], models=["m"], demo=True)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=stack), base_url="http://gateway"
    ) as client:
        for path in ("/v1/directory/models", "/v1/registry/models", "/v1/registry/providers"):
            r = await client.get(path)
            assert r.status_code == 200, r.text
            assert r.headers["content-type"] == "application/json"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=routing()), base_url="http://gateway"
    ) as client:
        for path in ("/v1/directory/models", "/v1/registry/models", "/v1/registry/providers"):
            text = (await client.get(path)).text
            assert SECRET not in text
            assert "10.1.2.3" not in text
            assert "private" not in text


async def test_public_endpoints_answer_get_only() -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=routing()), base_url="http://gateway"
    ) as client:
        r = await client.post("/v1/registry/models", json={})
        assert r.status_code == 405
        assert r.headers["allow"] == "GET, HEAD"
        assert r.json()["error"]["code"] == "method_not_allowed"
        head = await client.head("/v1/registry/models")
        assert (head.status_code, head.content) == (200, b"")


async def test_public_endpoints_are_rate_limited_per_client_address() -> None:
    app = routing(public_rate_limit=2)

    async def get(address: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(address, 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            return await client.get("/v1/registry/providers")

    assert [(await get("10.0.0.1")).status_code for _ in range(3)] == [200, 200, 429]
    limited = await get("10.0.0.1")
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(limited.headers["retry-after"]) >= 1
    assert (await get("10.0.0.2")).status_code == 200  # another address has its own budget


async def test_public_endpoints_can_be_turned_off() -> None:
    inner = ChatApp()

    async def fallthrough(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps({"inner": True}).encode()})

    app = Routing(
        fallthrough,
        catalog=Catalog.from_dict(CATALOG),
        providers=[
            Provider("chatty", inner),
            Provider("native", inner, endpoints=frozenset({"responses"})),
        ],
        app_provider=None,
        public_endpoints=False,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as client:
        r = await client.get("/v1/directory/models")
        assert (r.status_code, r.json()) == (404, {"inner": True})


async def test_workers_sharing_redis_share_the_public_budget(redis_server: Any) -> None:
    redis_server.flush()
    key = generate_key("live")[0]
    workers = [
        gateway(
            ChatApp(),
            keys=[key],
            models=["m"],
            redis_url=redis_server.url,
            routing_options={"public_rate_limit": 2},
        )
        for _ in range(2)
    ]
    statuses = []
    for app in (workers[0], workers[1], workers[0]):
        transport = httpx.ASGITransport(app=app, client=("10.9.9.9", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            statuses.append((await client.get("/v1/registry/models")).status_code)
    assert statuses == [200, 200, 429]
    for app in workers:
        await app.aclose()  # type: ignore[attr-defined]
