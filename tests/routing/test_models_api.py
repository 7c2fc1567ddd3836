"""GET /v1/models and /v1/models/{id} from the catalog, read by the auriko SDK."""

from __future__ import annotations

from typing import Any

import auriko
import httpx

from tests.routing.conftest import build, client
from tests.routing.scripted import Scripted


async def get(app: Any, path: str) -> Any:
    async with client(app) as c:
        return await c.get(path)


async def test_list_shape(make: Any) -> None:
    app, _ = make()
    body = (await get(app, "/v1/models")).json()
    assert body["object"] == "list"
    assert len(body["catalog_version"]) == 16
    assert isinstance(body["catalog_age_seconds"], int)
    alpha = next(m for m in body["data"] if m["id"] == "alpha")
    assert alpha["object"] == "model"
    assert alpha["owned_by"] == "auriko"
    assert alpha["supported_endpoints"] == ["chat_completions", "responses"]
    assert alpha["providers"][0] == {
        "name": "cheap",
        "input_price": 1.0,
        "output_price": 2.0,
        "data_policy": "none",
        "supported_endpoints": ["chat_completions", "responses"],
    }


async def test_each_provider_entry_says_which_endpoints_it_serves() -> None:
    # The audit's case: one model, a chat-only and a Responses-only provider.
    catalog = {
        "models": {
            "split": {
                "providers": [
                    {
                        "name": "cheap",
                        "input_price": 1.0,
                        "output_price": 1.0,
                        "endpoints": ["chat_completions"],
                    },
                    {
                        "name": "pricey",
                        "input_price": 2.0,
                        "output_price": 2.0,
                        "endpoints": ["responses"],
                    },
                ]
            }
        }
    }
    app = build({"cheap": Scripted("cheap"), "pricey": Scripted("pricey")}, catalog)
    for path in ("/v1/models", "/v1/models/split"):
        body = (await get(app, path)).json()
        entry = body["data"][0] if "data" in body else body
        assert entry["supported_endpoints"] == ["chat_completions", "responses"]
        assert [(p["name"], p["supported_endpoints"]) for p in entry["providers"]] == [
            ("cheap", ["chat_completions"]),
            ("pricey", ["responses"]),
        ]


async def test_default_list_omits_responses_only_models(make: Any) -> None:
    app, _ = make()
    ids = [m["id"] for m in (await get(app, "/v1/models")).json()["data"]]
    assert "oracle" not in ids


async def test_responses_filter_adds_responses_only_models(make: Any) -> None:
    app, _ = make()
    ids = [m["id"] for m in (await get(app, "/v1/models?endpoint=responses")).json()["data"]]
    assert "oracle" in ids
    assert "alpha" in ids


async def test_bad_endpoint_filter_is_400(make: Any) -> None:
    app, _ = make()
    r = await get(app, "/v1/models?endpoint=batch")
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "endpoint"


async def test_retrieve_alias_returns_canonical(make: Any) -> None:
    app, _ = make()
    body = (await get(app, "/v1/models/alpha-latest")).json()
    assert body["id"] == "alpha"


async def test_retrieve_unknown_is_404(make: Any) -> None:
    app, _ = make()
    r = await get(app, "/v1/models/ghost")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found"


async def test_post_on_models_is_405(make: Any) -> None:
    app, _ = make()
    async with client(app) as c:
        r = await c.post("/v1/models", json={})
    assert r.status_code == 405


async def test_models_endpoint_can_be_disabled(make: Any) -> None:
    app, _ = make(models_endpoint=False)
    assert (await get(app, "/v1/models")).status_code == 204


async def test_auriko_sdk_list_and_retrieve(make: Any) -> None:
    app, _ = make()
    sdk = auriko.AsyncClient(api_key="ak_test_x", base_url="http://test/v1")
    sdk._httpx = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=sdk.base_url, headers=sdk._default_headers
    )
    listed = await sdk.models.list(endpoint="responses")
    assert {m.id for m in listed.data} == {"alpha", "beta", "oracle"}
    assert listed.data[0].providers is not None
    model = await sdk.models.retrieve("alpha-latest")
    assert model.id == "alpha"
    assert model.owned_by == "auriko"
