"""Non-streaming chat and responses through Routing: body rewrite and routing_metadata."""

from __future__ import annotations

from typing import Any

import auriko
from openai import AsyncOpenAI

from akgate.context import Identity, RequestContext
from tests.routing.conftest import build, client
from tests.routing.scripted import Scripted

CHAT = "/v1/chat/completions"
MSG = [{"role": "user", "content": "hi"}]


async def post(app: Any, body: dict[str, Any], path: str = CHAT) -> Any:
    async with client(app) as c:
        return await c.post(path, json=body)


async def test_cheapest_provider_serves_by_default(make: Any) -> None:
    app, providers = make()
    r = await post(app, {"model": "alpha", "messages": MSG})
    assert r.status_code == 200
    meta = r.json()["routing_metadata"]
    assert meta["provider"] == "cheap"
    assert meta["provider_model_id"] == "alpha-cheap"
    assert meta["model_canonical"] == "alpha"
    assert meta["routing_strategy"] == "cost-focus"
    assert providers["pricey"].calls == []


async def test_provider_receives_its_model_id_without_gateway(make: Any) -> None:
    app, providers = make()
    gateway = {"routing": {"optimize": "cost"}}
    await post(app, {"model": "alpha", "messages": MSG, "gateway": gateway})
    sent = providers["cheap"].calls[0]
    assert sent["model"] == "alpha-cheap"
    assert "gateway" not in sent


async def test_content_length_matches_rewritten_response(make: Any) -> None:
    app, _ = make()
    r = await post(app, {"model": "alpha", "messages": MSG})
    assert int(r.headers["content-length"]) == len(r.content)


async def test_cost_is_usage_times_catalog_prices(make: Any) -> None:
    app, _ = make()
    r = await post(app, {"model": "alpha", "messages": MSG})
    # 10 input tokens at $1/1M + 5 output tokens at $2/1M
    assert r.json()["routing_metadata"]["cost"] == {"usd": 0.00002}


async def test_cache_savings_reported_when_cached_tokens(make: Any) -> None:
    app, providers = make()
    providers["cheap"].usage = (1000, 0, 800)
    r = await post(app, {"model": "alpha", "messages": MSG})
    cost = r.json()["routing_metadata"]["cost"]
    # 200 x $1 + 800 x $0.1 = $280/1M; without cache $1000/1M
    assert cost["usd"] == 0.00028
    assert cost["cache_savings_usd"] == 0.00072
    assert cost["cache_savings_percent"] == 72


async def test_no_ttft_on_json_but_throughput_measured(make: Any) -> None:
    ticks = iter(range(100))
    app, _ = make(clock=lambda: next(ticks) * 0.5)
    r = await post(app, {"model": "alpha", "messages": MSG})
    meta = r.json()["routing_metadata"]
    assert "ttft_ms" not in meta
    assert meta["throughput_tps"] > 0


async def test_alias_resolves_to_canonical(make: Any) -> None:
    app, _ = make()
    r = await post(app, {"model": "alpha-latest", "messages": MSG})
    assert r.json()["routing_metadata"]["model_canonical"] == "alpha"


async def test_model_suffix_sets_strategy(make: Any) -> None:
    app, _ = make()
    r = await post(app, {"model": "alpha:ttft", "messages": MSG})
    assert r.json()["routing_metadata"]["routing_strategy"] == "ttft"


async def test_suffix_with_two_colons_is_not_parsed(make: Any) -> None:
    app, _ = make()
    r = await post(app, {"model": "ft:alpha:cost", "messages": MSG})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found"


async def test_unknown_model_is_404(make: Any) -> None:
    app, _ = make()
    r = await post(app, {"model": "nope", "messages": MSG})
    assert r.status_code == 404
    assert r.json()["error"] == {
        "message": "Model 'nope' is not in the catalog. See GET /v1/models for the current list.",
        "type": "not_found_error",
        "code": "model_not_found",
        "param": "model",
        "doc_url": "https://docs.auriko.ai/errors/model_not_found",
    }


async def test_weights_report_custom_strategy(make: Any) -> None:
    app, _ = make()
    gateway = {"routing": {"weights": {"ttft": 1}}}
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": gateway})
    assert r.json()["routing_metadata"]["routing_strategy"] == "custom"


async def test_prefer_moves_provider_first(make: Any) -> None:
    app, _ = make()
    gateway = {"routing": {"prefer": "pricey"}}
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": gateway})
    assert r.json()["routing_metadata"]["provider"] == "pricey"


async def test_prefer_miss_does_not_fail(make: Any) -> None:
    app, _ = make()
    gateway = {"routing": {"prefer": "ghost"}}
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": gateway})
    meta = r.json()["routing_metadata"]
    assert meta["provider"] == "cheap"
    assert meta["warnings"][0]["type"] == "unknown_provider"


async def test_gateway_models_pool_picks_cheapest_model(make: Any) -> None:
    app, _ = make()
    gateway = {"models": ["alpha", "beta"]}
    r = await post(app, {"messages": MSG, "gateway": gateway})
    assert r.json()["routing_metadata"]["model_canonical"] == "beta"


async def test_gateway_models_fallback_mode_keeps_model_order(make: Any) -> None:
    app, _ = make()
    gateway = {"models": ["alpha", "beta"], "routing": {"mode": "fallback"}}
    r = await post(app, {"messages": MSG, "gateway": gateway})
    assert r.json()["routing_metadata"]["model_canonical"] == "alpha"


async def test_both_model_and_gateway_models_is_400(make: Any) -> None:
    app, _ = make()
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": {"models": ["beta"]}})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "gateway.models"
    assert r.json()["error"]["code"] == "invalid_parameter_value"


async def test_missing_model_is_400(make: Any) -> None:
    app, _ = make()
    r = await post(app, {"messages": MSG})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "missing_required_parameter"
    assert r.json()["error"]["param"] == "model"


async def test_invalid_routing_option_names_its_path(make: Any) -> None:
    app, _ = make()
    gateway = {"routing": {"max_fallback_attempts": 50}}
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": gateway})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_parameter_value"
    assert r.json()["error"]["param"] == "gateway.routing.max_fallback_attempts"


async def test_unknown_routing_option_is_unknown_field(make: Any) -> None:
    app, _ = make()
    gateway = {"routing": {"optimise": "cost"}}
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": gateway})
    assert r.json()["error"]["code"] == "unknown_field"
    assert r.json()["error"]["param"] == "gateway.routing.optimise"


async def test_extension_for_chosen_provider_is_merged(make: Any) -> None:
    app, providers = make()
    ext = {"cheap": {"top_k": 5, "api_key": "sk-secret", "model": "evil"}}
    r = await post(app, {"model": "alpha", "messages": MSG, "extensions": ext})
    sent = providers["cheap"].calls[0]
    assert sent["top_k"] == 5
    assert "api_key" not in sent
    assert sent["model"] == "alpha-cheap"
    assert "extensions" not in sent
    codes = {w["code"]: w["type"] for w in r.json()["routing_metadata"]["warnings"]}
    assert codes["extensions.cheap.api_key"] == "blocked_field"
    assert codes["extensions.cheap.model"] == "blocked_field"


async def test_extension_for_other_provider_is_ignored_with_warning(make: Any) -> None:
    app, providers = make()
    ext = {"pricey": {"top_k": 5}}
    r = await post(app, {"model": "alpha", "messages": MSG, "extensions": ext})
    assert "top_k" not in providers["cheap"].calls[0]
    assert r.json()["routing_metadata"]["warnings"] == [
        {
            "type": "ignored_extension",
            "code": "extensions.pricey",
            "message": "extensions.pricey was ignored for this provider: the request was served "
            "by 'cheap'.",
        }
    ]


async def test_validation_warnings_reach_metadata(make: Any) -> None:
    app, _ = make()

    async def outer(scope: Any, receive: Any, send: Any) -> None:
        ctx = RequestContext()
        ctx.warn("unsupported_field", "metadata", "metadata was ignored.")
        await app({**scope, "akgate": ctx}, receive, send)

    r = await post(outer, {"model": "alpha", "messages": MSG})
    assert r.json()["routing_metadata"]["warnings"][0]["code"] == "metadata"


async def test_unsupported_parameter_dropped_with_warning() -> None:
    catalog = {
        "models": {
            "m": {
                "providers": [
                    {
                        "name": "p",
                        "input_price": 1,
                        "output_price": 1,
                        "supported_parameters": ["seed"],
                    }
                ]
            }
        }
    }
    provider = Scripted("p")
    app = build({"p": provider}, catalog)
    r = await post(app, {"model": "m", "messages": MSG, "seed": 1, "top_p": 0.5})
    assert "top_p" not in provider.calls[0]
    assert provider.calls[0]["seed"] == 1
    warning = r.json()["routing_metadata"]["warnings"][0]
    assert (warning["type"], warning["code"]) == ("unsupported_parameter", "top_p")


async def test_require_parameters_rejects_instead_of_dropping() -> None:
    catalog = {
        "models": {
            "m": {
                "providers": [
                    {
                        "name": "p",
                        "input_price": 1,
                        "output_price": 1,
                        "supported_parameters": ["seed"],
                    }
                ]
            }
        }
    }
    app = build({"p": Scripted("p")}, catalog)
    gateway = {"routing": {"require_parameters": True}}
    r = await post(app, {"model": "m", "messages": MSG, "top_p": 0.5, "gateway": gateway})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "required_params_not_supported"


async def test_require_parameters_routes_to_capable_provider() -> None:
    catalog = {
        "models": {
            "m": {
                "providers": [
                    {"name": "p", "input_price": 1, "output_price": 1, "supported_parameters": []},
                    {"name": "q", "input_price": 2, "output_price": 2},
                ]
            }
        }
    }
    app = build({"p": Scripted("p"), "q": Scripted("q")}, catalog)
    gateway = {"routing": {"require_parameters": True}}
    r = await post(app, {"model": "m", "messages": MSG, "top_p": 0.5, "gateway": gateway})
    assert r.json()["routing_metadata"]["provider"] == "q"


async def test_chat_request_to_responses_only_model(make: Any) -> None:
    app, _ = make()
    r = await post(app, {"model": "oracle", "messages": MSG})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "response_api_only"


async def test_reasoning_effort_on_non_reasoning_model(make: Any) -> None:
    app, _ = make()
    r = await post(app, {"model": "alpha", "messages": MSG, "reasoning_effort": "high"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "reasoning_not_supported"
    assert r.json()["error"]["param"] == "reasoning_effort"


async def test_reasoning_effort_off_on_non_reasoning_model_is_dropped(make: Any) -> None:
    app, providers = make()
    r = await post(app, {"model": "alpha", "messages": MSG, "reasoning_effort": "off"})
    assert "reasoning_effort" not in providers["cheap"].calls[0]
    assert r.json()["routing_metadata"]["warnings"][0]["type"] == "unsupported_parameter"


async def test_reasoning_effort_normalised_to_model_ceiling(make: Any) -> None:
    app, providers = make()
    r = await post(app, {"model": "beta", "messages": MSG, "reasoning_effort": "max"})
    assert providers["pricey"].calls[0]["reasoning_effort"] == "high"
    warning = r.json()["routing_metadata"]["warnings"][0]
    assert warning["type"] == "unsupported_parameter"
    assert warning["code"] == "reasoning_effort"


async def test_reasoning_that_cannot_be_disabled(make: Any) -> None:
    app, _ = make()
    r = await post(app, {"model": "beta", "messages": MSG, "reasoning_effort": "off"})
    assert r.json()["error"]["code"] == "thinking_disable_not_supported"


async def test_tools_need_a_tool_capable_provider() -> None:
    catalog = {
        "models": {
            "m": {
                "providers": [
                    {
                        "name": "p",
                        "input_price": 1,
                        "output_price": 1,
                        "capabilities": {"tools": False},
                    }
                ]
            }
        }
    }
    app = build({"p": Scripted("p")}, catalog)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    r = await post(app, {"model": "m", "messages": MSG, "tools": tools})
    assert r.json()["error"]["code"] == "tools_not_supported"


async def test_tool_choice_required_routes_to_a_provider_that_honours_it() -> None:
    catalog = {"models": {"m": {"providers": [
        {"name": "lax", "input_price": 1, "output_price": 1,
         "capabilities": {"tool_choice_required": False}},
        {"name": "strict", "input_price": 2, "output_price": 2}]}}}  # fmt: skip
    providers = {"lax": Scripted("lax"), "strict": Scripted("strict")}
    app = build(providers, catalog)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    body = {"model": "m", "messages": MSG, "tools": tools}
    r = await post(app, {**body, "tool_choice": "auto"})
    assert r.json()["routing_metadata"]["provider"] == "lax"  # the cheaper one
    r = await post(app, {**body, "tool_choice": "required"})
    assert r.json()["routing_metadata"]["provider"] == "strict"


async def test_tool_choice_required_without_a_capable_provider() -> None:
    catalog = {"models": {"m": {"providers": [
        {"name": "p", "input_price": 1, "output_price": 1,
         "capabilities": {"tool_choice_required": False}}]}}}  # fmt: skip
    app = build({"p": Scripted("p")}, catalog)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    r = await post(app, {"model": "m", "messages": MSG, "tools": tools, "tool_choice": "required"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "tool_choice_required_not_supported"
    assert r.json()["error"]["param"] == "tool_choice"


async def test_images_need_a_vision_provider(make: Any) -> None:
    app, _ = make()
    content = [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    r = await post(app, {"model": "alpha", "messages": [{"role": "user", "content": content}]})
    assert r.json()["error"]["code"] == "vision_not_supported"
    assert r.json()["error"]["param"] == "messages"


async def test_structured_output_needs_capable_provider() -> None:
    catalog = {
        "models": {
            "m": {
                "providers": [
                    {
                        "name": "p",
                        "input_price": 1,
                        "output_price": 1,
                        "capabilities": {"structured_output": False},
                    }
                ]
            }
        }
    }
    app = build({"p": Scripted("p")}, catalog)
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
    r = await post(app, {"model": "m", "messages": MSG, "response_format": fmt})
    assert r.json()["error"]["code"] == "structured_output_not_supported"


async def test_allowlist_miss_is_400(make: Any) -> None:
    app, _ = make()
    gateway = {"routing": {"providers": ["other"]}}
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": gateway})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "provider_not_in_allowlist"


async def test_allowlist_restricts_candidates(make: Any) -> None:
    app, _ = make()
    gateway = {"routing": {"providers": ["pricey"]}}
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": gateway})
    assert r.json()["routing_metadata"]["provider"] == "pricey"


async def test_exclude_providers(make: Any) -> None:
    app, _ = make()
    gateway = {"routing": {"exclude_providers": ["cheap"]}}
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": gateway})
    assert r.json()["routing_metadata"]["provider"] == "pricey"


async def test_excluding_every_provider_is_503(make: Any) -> None:
    app, _ = make()
    gateway = {"routing": {"exclude_providers": ["cheap", "pricey"]}}
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": gateway})
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "no_provider_available"


async def test_data_policy_filters_providers(make: Any) -> None:
    app, _ = make()
    gateway = {"routing": {"data_policy": "zdr"}}
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": gateway})
    assert r.json()["routing_metadata"]["provider"] == "pricey"


async def test_cost_ceiling_excludes_expensive_providers(make: Any) -> None:
    app, _ = make()
    gateway = {"routing": {"max_cost_per_1m": 1.0}}
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": gateway})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "cost_constraint_exceeded"


async def test_latency_ceiling_uses_observed_p50(make: Any) -> None:
    app, _ = make()
    for _ in range(5):
        app.stats.add("cheap", "alpha", ttft_ms=900, tps=50)  # type: ignore[attr-defined]
        app.stats.add("pricey", "alpha", ttft_ms=100, tps=50)  # type: ignore[attr-defined]
    gateway = {"routing": {"max_ttft_ms": 500}}
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": gateway})
    assert r.json()["routing_metadata"]["provider"] == "pricey"


async def test_latency_ceiling_nobody_meets(make: Any) -> None:
    app, _ = make()
    app.stats.add("cheap", "alpha", ttft_ms=900, tps=50)  # type: ignore[attr-defined]
    app.stats.add("pricey", "alpha", ttft_ms=800, tps=50)  # type: ignore[attr-defined]
    gateway = {"routing": {"max_ttft_ms": 500}}
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": gateway})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "latency_constraint_exceeded"


async def test_p95_percentile_is_used_when_asked(make: Any) -> None:
    app, _ = make()
    for ttft in [100] * 18 + [2000, 2000]:
        app.stats.add("cheap", "alpha", ttft_ms=ttft, tps=None)  # type: ignore[attr-defined]
    gateway = {"routing": {"max_ttft_ms": 500, "ttft_percentile": "p95"}}
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": gateway})
    assert r.json()["routing_metadata"]["provider"] == "pricey"


async def test_ttft_filter_reads_the_ttft_percentile_when_both_are_set(make: Any) -> None:
    # cheap: p50 TTFT 100 ms (meets 500), p95 2000 ms. The throughput percentile must not leak
    # into the TTFT filter (the audit's late-binding bug dropped cheap here).
    app, _ = make()
    for ttft in [100] * 18 + [2000, 2000]:
        app.stats.add("cheap", "alpha", ttft_ms=ttft, tps=50)  # type: ignore[attr-defined]
    routing = {
        "max_ttft_ms": 500,
        "ttft_percentile": "p50",
        "throughput_percentile": "p95",
        "min_throughput_tps": 10,
    }
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": {"routing": routing}})
    assert r.status_code == 200, r.text
    assert r.json()["routing_metadata"]["provider"] == "cheap"


async def test_ttft_constraint_error_names_the_ttft_percentile(make: Any) -> None:
    app, _ = make()
    for name in ("cheap", "pricey"):
        for ttft in [900] * 18 + [100, 100]:
            app.stats.add(name, "alpha", ttft_ms=ttft, tps=50)  # type: ignore[attr-defined]
    routing = {"max_ttft_ms": 500, "ttft_percentile": "p50", "throughput_percentile": "p95"}
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": {"routing": routing}})
    error = r.json()["error"]
    assert (r.status_code, error["code"]) == (400, "latency_constraint_exceeded")
    assert "p50 TTFT" in error["message"]


async def test_min_throughput(make: Any) -> None:
    app, _ = make()
    app.stats.add("cheap", "alpha", ttft_ms=None, tps=10)  # type: ignore[attr-defined]
    app.stats.add("pricey", "alpha", ttft_ms=None, tps=10)  # type: ignore[attr-defined]
    gateway = {"routing": {"min_throughput_tps": 100}}
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": gateway})
    assert r.json()["error"]["code"] == "throughput_constraint_not_met"


async def test_ttft_focus_prefers_fastest_observed(make: Any) -> None:
    app, _ = make()
    app.stats.add("cheap", "alpha", ttft_ms=900, tps=50)  # type: ignore[attr-defined]
    app.stats.add("pricey", "alpha", ttft_ms=100, tps=50)  # type: ignore[attr-defined]
    gateway = {"routing": {"optimize": "ttft-focus"}}
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": gateway})
    assert r.json()["routing_metadata"]["provider"] == "pricey"


async def test_successful_requests_feed_stats(make: Any) -> None:
    app, _ = make()
    await post(app, {"model": "alpha", "messages": MSG})
    assert app.stats.get("cheap", "alpha").samples == 1  # type: ignore[attr-defined]


async def test_test_keys_only_reach_test_providers() -> None:
    providers = {"cheap": Scripted("cheap"), "pricey": Scripted("pricey")}
    app = build(providers)
    from akgate.routing import Provider
    from akgate.routing._registry import build_routes

    app.providers["pricey"] = Provider("pricey", providers["pricey"], test=True)
    app._routes = build_routes(app.catalog, app.providers, app._apps)

    async def outer(scope: Any, receive: Any, send: Any) -> None:
        ctx = RequestContext(identity=Identity(key_id="ak_test_x", environment="test"))
        await app({**scope, "akgate": ctx}, receive, send)

    r = await post(outer, {"model": "alpha", "messages": MSG})
    assert r.json()["routing_metadata"]["provider"] == "pricey"


async def test_test_key_without_test_provider_is_503(make: Any) -> None:
    app, _ = make()

    async def outer(scope: Any, receive: Any, send: Any) -> None:
        ctx = RequestContext(identity=Identity(key_id="ak_test_x", environment="test"))
        await app({**scope, "akgate": ctx}, receive, send)

    r = await post(outer, {"model": "alpha", "messages": MSG})
    assert r.status_code == 503


async def test_responses_json_carries_metadata(make: Any) -> None:
    app, providers = make()
    r = await post(app, {"model": "oracle", "input": "hi"}, "/v1/responses")
    body = r.json()
    assert body["object"] == "response"
    assert body["routing_metadata"]["provider_model_id"] == "oracle-pro"
    assert body["routing_metadata"]["cost"]["usd"] == 0.0003
    assert providers["pricey"].calls[0]["model"] == "oracle-pro"


async def test_responses_reasoning_effort_normalised(make: Any) -> None:
    app, providers = make()
    body = {"model": "beta", "input": "hi", "reasoning": {"effort": "minimal", "summary": "auto"}}
    r = await post(app, body, "/v1/responses")
    assert providers["pricey"].calls[0]["reasoning"] == {"effort": "low", "summary": "auto"}
    assert r.json()["routing_metadata"]["warnings"][0]["code"] == "reasoning.effort"


async def test_other_paths_pass_through(make: Any) -> None:
    app, _ = make()
    async with client(app) as c:
        r = await c.get("/health")
    assert r.status_code == 204


async def test_openai_sdk_reads_metadata_with_auriko_parser(make: Any) -> None:
    app, _ = make()
    import httpx

    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    sdk = AsyncOpenAI(api_key="ak_test", base_url="http://test/v1", http_client=http)
    completion = await sdk.chat.completions.create(
        model="alpha", messages=MSG, extra_body={"gateway": {"routing": {"optimize": "cost"}}}
    )
    meta = auriko.parse_routing_metadata(completion)
    assert meta is not None
    assert meta.provider == "cheap"
    assert meta.cost is not None
    assert meta.cost.usd > 0


def _byok_app() -> tuple[Any, dict[str, Scripted]]:
    from akgate.routing import Catalog, Provider, Routing

    providers = {"cheap": Scripted("cheap"), "pricey": Scripted("pricey")}
    catalog = {
        "models": {
            "alpha": {
                "providers": [
                    {"name": "cheap", "input_price": 1.0, "output_price": 2.0},
                    {"name": "pricey", "input_price": 3.0, "output_price": 6.0},
                ]
            },
            "solo": {"providers": [{"name": "cheap", "input_price": 1.0, "output_price": 1.0}]},
        }
    }
    app = Routing(
        providers["cheap"],
        catalog=Catalog.from_dict(catalog),
        providers=[
            Provider("cheap", providers["cheap"]),
            Provider("pricey", providers["pricey"], byok=True),
        ],
        app_provider=None,
    )
    return app, providers


async def test_only_byok_keeps_byok_providers() -> None:
    app, _ = _byok_app()
    gateway = {"routing": {"only_byok": True}}
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": gateway})
    assert r.json()["routing_metadata"]["provider"] == "pricey"


async def test_only_byok_without_byok_provider_is_byok_keys_required() -> None:
    app, _ = _byok_app()
    gateway = {"routing": {"only_byok": True}}
    r = await post(app, {"model": "solo", "messages": MSG, "gateway": gateway})
    assert r.status_code == 400
    error = r.json()["error"]
    assert (error["code"], error["param"]) == ("byok_keys_required", "gateway.routing.only_byok")


async def test_only_platform_skips_byok_providers() -> None:
    app, providers = _byok_app()
    gateway = {"routing": {"only_platform": True, "optimize": "ttft-focus", "prefer": "pricey"}}
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": gateway})
    assert r.json()["routing_metadata"]["provider"] == "cheap"
    assert providers["pricey"].calls == []


async def test_only_platform_without_platform_provider_is_platform_keys_unavailable() -> None:
    app, _ = _byok_app()
    gateway = {"routing": {"only_platform": True, "providers": ["pricey"]}}
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": gateway})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "platform_keys_unavailable"


TIERED = {
    "models": {
        "alpha": {
            "providers": [
                {"name": "cheap", "input_price": 1.0, "output_price": 2.0, "tier": "standard"},
                {"name": "pricey", "input_price": 6.0, "output_price": 12.0, "tier": "priority",
                 "premium": True},
            ]
        },
        "fast": {
            "providers": [
                {"name": "pricey", "input_price": 6.0, "output_price": 12.0, "tier": "priority",
                 "premium": True},
            ]
        },
    }
}  # fmt: skip


async def test_tier_is_reported_and_premium_tiers_are_excluded_by_default() -> None:
    providers = {"cheap": Scripted("cheap"), "pricey": Scripted("pricey")}
    app = build(providers, TIERED)
    gateway = {"routing": {"prefer": "pricey"}}
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": gateway})
    meta = r.json()["routing_metadata"]
    assert (meta["provider"], meta["tier"]) == ("cheap", "standard")
    assert providers["pricey"].calls == []


async def test_premium_only_model_without_opt_in_is_tier_opt_in_required() -> None:
    app = build({"cheap": Scripted("cheap"), "pricey": Scripted("pricey")}, TIERED)
    r = await post(app, {"model": "fast", "messages": MSG})
    assert r.status_code == 400
    error = r.json()["error"]
    assert (error["code"], error["param"]) == ("tier_opt_in_required", "gateway.routing.tier")


async def test_tier_opt_in_routes_to_that_tier() -> None:
    app = build({"cheap": Scripted("cheap"), "pricey": Scripted("pricey")}, TIERED)
    gateway = {"routing": {"tier": "priority"}}
    r = await post(app, {"model": "alpha", "messages": MSG, "gateway": gateway})
    meta = r.json()["routing_metadata"]
    assert (meta["provider"], meta["tier"]) == ("pricey", "priority")
