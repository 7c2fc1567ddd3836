"""Agent tool types across routing: native Responses providers get them untouched (never
``client_metadata``), chat-only providers get the adapter's ``hosted_tools`` policy."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from akgate import gateway
from akgate.providers import DemoModel
from akgate.routing import Catalog, Provider

TOOLS = [
    {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}},
    {"type": "namespace", "name": "crm", "description": "CRM.",
     "tools": [{"type": "function", "name": "lookup"}]},
    {"type": "custom", "name": "apply_patch"},
    {"type": "web_search", "external_web_access": False},
]  # fmt: skip
BODY = {
    "model": "",
    "input": "hi",
    "tools": TOOLS,
    "client_metadata": {"thread_id": "t1"},
    "store": False,
}
CATALOG = {
    "models": {
        "native": {"providers": [{"name": "native", "input_price": 1, "output_price": 1}]},
        "chatty": {
            "providers": [
                {"name": "chatty", "model_id": "demo", "input_price": 1, "output_price": 1}
            ]
        },
    }
}


class Native:
    """A provider serving /v1/responses itself: records the body, answers a minimal Response."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(json.loads(body))
        answer = json.dumps(
            {"id": "resp_1", "object": "response", "status": "completed", "model": "native",
             "output": [], "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}
        ).encode()  # fmt: skip
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": answer})


def stack(native: Native, **options: Any) -> httpx.AsyncClient:
    app = gateway(
        DemoModel(),
        auth=False,
        catalog=CATALOG,
        app_provider="chatty",
        providers=[
            Provider("native", native, endpoints=frozenset({"chat_completions", "responses"}))
        ],
        **options,
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_native_provider_gets_every_tool_untouched_and_no_client_metadata() -> None:
    native = Native()
    async with stack(native) as http:
        reply = await http.post("/v1/responses", json={**BODY, "model": "native"})
    assert reply.status_code == 200, reply.text
    [sent] = native.bodies
    assert sent["tools"] == TOOLS
    assert "client_metadata" not in sent


@pytest.mark.parametrize(("policy", "status"), [("strict", 400), ("lenient", 200)])
async def test_chat_only_provider_applies_the_policy(policy: str, status: int) -> None:
    async with stack(Native(), hosted_tools=policy) as http:
        reply = await http.post("/v1/responses", json={**BODY, "model": "chatty"})
    assert reply.status_code == status, reply.text
    if status == 400:
        assert reply.json()["error"]["code"] == "hosted_tool_not_supported"
        assert reply.json()["error"]["param"] == "tools[3]"
    else:
        warnings = reply.json()["routing_metadata"]["warnings"]
        assert ("unsupported_feature", "tools[3]") in {(w["type"], w["code"]) for w in warnings}


async def test_hosted_tools_option_is_checked() -> None:
    with pytest.raises(ValueError, match="hosted_tools"):
        gateway(DemoModel(), auth=False, hosted_tools="loose")  # type: ignore[arg-type]
    assert Catalog.demo().get("demo") is not None
