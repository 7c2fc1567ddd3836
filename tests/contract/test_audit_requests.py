"""The contract audit's deviations 1-9, each with the exact request the audit sent."""

from __future__ import annotations

import json
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from akgate.errors import ERROR_CODES, ERROR_TYPES

from .conftest import ChatApp, over_app, served

HI = {"model": "demo", "input": "hi"}


async def events_of(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], **kwargs: Any
) -> list[dict[str, Any]]:
    async with aconnect_sse(client, "POST", path, json=body, **kwargs) as source:
        assert source.response.status_code == 200
        return [json.loads(e.data) async for e in source.aiter_sse() if e.data != "[DONE]"]


def responses_objects(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every ``response`` object a Responses stream carried (created ... terminal)."""
    return [e["response"] for e in events if isinstance(e.get("response"), dict)]


def assert_error(response: httpx.Response, code: str, param: str | None) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, param)
    assert error["doc_url"] == f"https://docs.auriko.ai/errors/{code}"


# -- 1. presence_penalty / frequency_penalty on /v1/responses ---------------------------------


async def test_penalties_are_accepted_mapped_and_echoed() -> None:
    app = ChatApp()
    async with over_app(app) as client:
        body = {"model": "m", "input": "hi", "presence_penalty": 0.5, "frequency_penalty": -1.5}
        r = await client.post("/v1/responses", json=body)
        assert r.status_code == 200, r.text
        assert (r.json()["presence_penalty"], r.json()["frequency_penalty"]) == (0.5, -1.5)
        assert (app.bodies[-1]["presence_penalty"], app.bodies[-1]["frequency_penalty"]) == (
            0.5,
            -1.5,
        )
        events = await events_of(client, "/v1/responses", {**body, "stream": True})
        for response in responses_objects(events):
            assert (response["presence_penalty"], response["frequency_penalty"]) == (0.5, -1.5)


async def test_null_penalties_are_accepted() -> None:
    async with served() as client:
        r = await client.post(
            "/v1/responses", json={**HI, "presence_penalty": None, "frequency_penalty": None}
        )
        assert r.status_code == 200, r.text
        assert (r.json()["presence_penalty"], r.json()["frequency_penalty"]) == (0, 0)


async def test_penalties_out_of_range_are_400() -> None:
    async with served() as client:
        for field, value in (("presence_penalty", 2.5), ("frequency_penalty", -2.01)):
            r = await client.post("/v1/responses", json={**HI, field: value})
            assert_error(r, "invalid_parameter_value", field)


# -- 2. service_tier ---------------------------------------------------------------------------


async def test_bogus_service_tier_is_400() -> None:
    async with served() as client:
        r = await client.post("/v1/responses", json={**HI, "service_tier": "bogus"})
        assert_error(r, "invalid_parameter_value", "service_tier")


async def test_service_tier_echo_is_the_providers_when_it_says_so() -> None:
    app = ChatApp(service_tier="priority")
    async with over_app(app) as client:
        body = {"model": "m", "input": "hi", "service_tier": "auto"}
        r = await client.post("/v1/responses", json=body)
        assert r.json()["service_tier"] == "priority"
        assert app.bodies[-1]["service_tier"] == "auto"
        events = await events_of(client, "/v1/responses", {**body, "stream": True})
        assert responses_objects(events)[-1]["service_tier"] == "priority"


async def test_service_tier_echo_is_the_requests_otherwise() -> None:
    async with over_app(ChatApp()) as client:
        body = {"model": "m", "input": "hi", "service_tier": "flex"}
        assert (await client.post("/v1/responses", json=body)).json()["service_tier"] == "flex"
        events = await events_of(client, "/v1/responses", {**body, "stream": True})
        assert {r["service_tier"] for r in responses_objects(events)} == {"flex"}


# -- 4. routing_metadata.tier: one field set on both endpoints (documented decision) ----------


async def test_tier_is_reported_on_both_endpoints_when_the_provider_has_one() -> None:
    models = {"m": {"tier": "standard"}}
    async with over_app(ChatApp(), models=models) as client:
        chat = await client.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
        )
        responses = await client.post("/v1/responses", json={"model": "m", "input": "x"})
        assert chat.json()["routing_metadata"]["tier"] == "standard"
        assert responses.json()["routing_metadata"]["tier"] == "standard"
    async with served() as client:  # no tier in the catalog: no tier key
        assert (
            "tier" not in (await client.post("/v1/responses", json=HI)).json()["routing_metadata"]
        )


# -- 5. one code per fault, registry types only, doc_url everywhere ----------------------------

FAULT = {"x-demo-fault": "midstream"}
SAID = "hello there my friend"


def assert_registry(error: dict[str, Any], code: str) -> None:
    assert error["code"] == code
    assert error["type"] in ERROR_TYPES
    assert error["type"] == ERROR_CODES[code][1]
    assert error["doc_url"] == f"https://docs.auriko.ai/errors/{code}"


async def test_a_mid_stream_fault_has_one_code_in_json_chat_frames_and_responses_events() -> None:
    chat = {"model": "demo", "messages": [{"role": "user", "content": SAID}]}
    responses = {"model": "demo", "input": SAID}
    async with served() as client:
        chat_json = await client.post("/v1/chat/completions", json=chat, headers=FAULT)
        responses_json = await client.post("/v1/responses", json=responses, headers=FAULT)
        frames = await events_of(
            client, "/v1/chat/completions", {**chat, "stream": True}, headers=FAULT
        )
        events = await events_of(
            client, "/v1/responses", {**responses, "stream": True}, headers=FAULT
        )
    code = chat_json.json()["error"]["code"]
    assert_registry(chat_json.json()["error"], code)
    assert_registry(responses_json.json()["error"], code)
    assert_registry(frames[-1]["error"], code)
    error, failed = events[-2], events[-1]
    assert (error["type"], failed["type"]) == ("error", "response.failed")
    assert error["code"] == code
    assert error["doc_url"] == f"https://docs.auriko.ai/errors/{code}"
    assert_registry(error["error"], code)
    assert_registry(failed["response"]["error"], code)


# -- 6. prompt -----------------------------------------------------------------------------------


async def test_stored_prompt_is_operation_not_allowed() -> None:
    async with served() as client:
        r = await client.post(
            "/v1/responses", json={**HI, "prompt": {"id": "pmpt_123", "version": "2"}}
        )
        assert_error(r, "operation_not_allowed", "prompt")


# -- 7. extensions for documented providers ------------------------------------------------------


async def test_extension_for_a_documented_provider_is_ignored_not_unknown() -> None:
    async with served() as client:
        for provider in ("anthropic", "openai", "google", "deepseek"):
            r = await client.post(
                "/v1/responses", json={**HI, "extensions": {provider: {"top_k": 5}}}
            )
            warnings = r.json()["routing_metadata"]["warnings"]
            assert [(w["type"], w["code"]) for w in warnings] == [
                ("ignored_extension", f"extensions.{provider}")
            ]
            assert "ignored for this provider" in warnings[0]["message"]
        r = await client.post("/v1/responses", json={**HI, "extensions": {"acme": {"x": 1}}})
        assert r.json()["routing_metadata"]["warnings"][0]["type"] == "unknown_provider"


# -- 9. function tools echoed with every key ----------------------------------------------------

TOOL = {"type": "function", "name": "get_weather"}
FULL_TOOL = {**TOOL, "description": None, "parameters": None, "strict": None}


async def test_function_tool_echo_has_every_key_in_json_and_every_streamed_response() -> None:
    async with served() as client:
        body = {**HI, "tools": [TOOL]}
        r = await client.post("/v1/responses", json=body)
        assert r.json()["tools"] == [FULL_TOOL]
        events = await events_of(client, "/v1/responses", {**body, "stream": True})
        objects = responses_objects(events)
        assert len(objects) >= 3  # created, in_progress, completed
        for response in objects:
            assert response["tools"] == [FULL_TOOL]


async def test_function_tool_echo_keeps_what_was_sent() -> None:
    tool = {**TOOL, "description": "Weather", "parameters": {"type": "object"}, "strict": False}
    async with served() as client:
        r = await client.post("/v1/responses", json={**HI, "tools": [tool]})
        assert r.json()["tools"] == [tool]


# -- 10. parameters a provider ignores ----------------------------------------------------------

CHAT_HI = {"model": "demo", "messages": [{"role": "user", "content": "hi"}]}


async def test_parameters_the_demo_ignores_are_dropped_with_a_warning() -> None:
    async with served() as client:
        r = await client.post(
            "/v1/chat/completions",
            json={**CHAT_HI, "verbosity": "low", "web_search_options": {}, "temperature": 0.2},
        )
        warnings = r.json()["routing_metadata"]["warnings"]
        assert [(w["type"], w["code"]) for w in warnings] == [
            ("unsupported_parameter", "verbosity"),
            ("unsupported_parameter", "web_search_options"),
        ]
        strict = {"routing": {"require_parameters": True}}
        body = {**CHAT_HI, "verbosity": "low", "gateway": strict}
        r = await client.post("/v1/chat/completions", json=body)
        assert_error(r, "required_params_not_supported", "gateway.routing.require_parameters")


async def test_a_catalog_without_supported_parameters_forwards_everything() -> None:
    app = ChatApp()
    async with over_app(app) as client:
        body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 3}
        r = await client.post("/v1/chat/completions", json={**body, "logprobs": True})
        assert "warnings" not in r.json()["routing_metadata"]
        assert (app.bodies[-1]["n"], app.bodies[-1]["logprobs"]) == (3, True)
