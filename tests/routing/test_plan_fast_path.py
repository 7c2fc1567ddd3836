"""The plan's shortcut (one model with one route, no routing options, nothing that filters
routes) gives the plan that filtering and ranking give, on varied catalogs and requests."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from akgate.context import Identity, RequestContext
from akgate.errors import GatewayError
from akgate.routing import Catalog, Provider, Routing
from akgate.routing._attempt import Plan
from akgate.routing._strategies import read_needs

ENDPOINT_SETS = [
    ["chat_completions", "responses", "messages"],
    ["chat_completions"],
    ["responses"],
    ["chat_completions", "responses"],
]


def offering(name: str, endpoints: list[str], premium: bool, tools: bool) -> dict[str, Any]:
    return {
        "name": name,
        "input_price": 1,
        "output_price": 2,
        "endpoints": endpoints,
        "premium": premium,
        "capabilities": {"tools": tools},
    }


@st.composite
def catalogs(draw: st.DrawFn) -> dict[str, Any]:
    models: dict[str, Any] = {}
    for i in range(draw(st.integers(1, 3))):
        providers = [
            offering(
                name,
                draw(st.sampled_from(ENDPOINT_SETS)),
                draw(st.booleans()) and draw(st.booleans()),
                draw(st.booleans()),
            )
            for name in draw(st.sampled_from([["app"], ["app"], ["app", "other"]]))
        ]
        models[f"m{i}"] = {"aliases": [f"alias{i}"], "providers": providers}
    return {"models": models}


requests = st.fixed_dictionaries(
    {"model": st.sampled_from(["m0", "m1", "alias0", "m0:cost", "nope", 3])},
    optional={
        "tools": st.sampled_from([[], [{"type": "function", "function": {"name": "f"}}]]),
        "temperature": st.just(0.5),
        "stream": st.booleans(),
        "gateway": st.sampled_from(
            [{}, {"routing": {"optimize": "ttft"}}, {"routing": {"allow_fallbacks": False}}]
        ),
        "reasoning_effort": st.just("high"),
    },
)


async def app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not called")


def outcome(coro: Any) -> Plan | tuple[str, str | None]:
    try:
        return asyncio.run(coro)  # type: ignore[no-any-return]
    except GatewayError as err:
        return (err.code, err.param)


@settings(max_examples=150, deadline=None)
@given(
    catalogs(),
    requests,
    st.sampled_from(["chat_completions", "responses", "messages"]),
    st.sampled_from([None, "live", "test"]),
    st.booleans(),
)
def test_the_plan_shortcut_matches_ranking(
    catalog: dict[str, Any],
    payload: dict[str, Any],
    endpoint: Any,
    environment: Any,
    test_providers: bool,
) -> None:
    routing = Routing(
        app,
        catalog=Catalog.from_dict(catalog),
        app_provider=Provider("app", test=test_providers),
        providers=[Provider("other", app=app)],
    )
    ctx = RequestContext(validated=True)
    if environment is not None:
        ctx.identity = Identity(key_id="ak_x", environment=environment)
    fast = outcome(routing._plan(payload, ctx, endpoint))
    gateway = payload.get("gateway") or {}
    general = outcome(
        routing._ranked_plan(
            payload,
            ctx,
            endpoint,
            gateway.get("routing") or {},
            None,
            payload.get("model"),
            routing.catalog.get(payload["model"]) if isinstance(payload["model"], str) else None,
            read_needs(payload, endpoint),
        )
    )
    assert fast == general
