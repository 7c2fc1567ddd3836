"""Fallback before the first byte, explicit errors after it, deadlines and disconnects."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from tests.routing.conftest import CHAT_SCOPE, client, stream_then_disconnect

MSG = [{"role": "user", "content": "hi"}]
BODY = {"model": "alpha", "messages": MSG}


async def post(app: Any, body: dict[str, Any] = BODY) -> Any:
    async with client(app) as c:
        return await c.post("/v1/chat/completions", json=body)


def with_routing(**routing: Any) -> dict[str, Any]:
    return {**BODY, "gateway": {"routing": routing}}


async def test_500_falls_back_to_second_provider(make: Any) -> None:
    app, providers = make(cheap="status")
    r = await post(app)
    assert r.status_code == 200
    assert r.json()["routing_metadata"]["provider"] == "pricey"
    assert len(providers["cheap"].calls) == 1


async def test_429_falls_back(make: Any) -> None:
    app, providers = make(cheap="status")
    providers["cheap"].status = 429
    providers["cheap"].retry_after = "7"
    r = await post(app)
    assert r.json()["routing_metadata"]["provider"] == "pricey"


async def test_timeout_falls_back_with_warning(make: Any) -> None:
    app, providers = make(cheap="hang")
    r = await post(app, with_routing(timeout_ms=50))
    meta = r.json()["routing_metadata"]
    assert meta["provider"] == "pricey"
    assert providers["cheap"].cancelled
    assert meta["warnings"][0]["type"] == "provider_timeout"


async def test_connection_error_falls_back(make: Any) -> None:
    app, _ = make(cheap="raise")
    r = await post(app)
    assert r.json()["routing_metadata"]["provider"] == "pricey"


async def test_fallback_without_first_byte_leaves_no_trace_of_failure(make: Any) -> None:
    app, _ = make(cheap="status")
    r = await post(app)
    assert "error" not in r.json()
    assert r.json()["choices"][0]["message"]["content"] == "Hello from pricey"


async def test_all_fail_with_500_is_502(make: Any) -> None:
    app, _ = make(cheap="status", pricey="status")
    r = await post(app)
    assert r.status_code == 502
    error = r.json()["error"]
    assert error["code"] == "upstream_error"
    assert error["provider"] == "pricey"
    assert error["type"] == "api_error"


async def test_all_fail_last_429_keeps_retry_after(make: Any) -> None:
    app, providers = make(cheap="status", pricey="status")
    providers["pricey"].status = 429
    providers["pricey"].retry_after = "12"
    r = await post(app)
    assert r.status_code == 429
    assert r.headers["retry-after"] == "12"
    assert r.json()["error"]["code"] == "rate_limit_exceeded"


async def test_all_fail_last_503_is_no_provider_available(make: Any) -> None:
    app, providers = make(cheap="status", pricey="status")
    providers["pricey"].status = 503
    r = await post(app)
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "no_provider_available"


async def test_all_time_out_is_504(make: Any) -> None:
    app, _ = make(cheap="hang", pricey="hang")
    r = await post(app, with_routing(timeout_ms=30))
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "upstream_timeout"


async def test_deadline_exceeded_is_504(make: Any) -> None:
    app, providers = make(cheap="hang", pricey="hang")
    r = await post(app, with_routing(timeout_ms=40, deadline_ms=60))
    assert r.status_code == 504
    # the deadline cut the second attempt short (or, on a loaded machine, left no time to start it)
    assert providers["pricey"].cancelled or not providers["pricey"].calls


async def test_allow_fallbacks_false_tries_one(make: Any) -> None:
    app, providers = make(cheap="status")
    r = await post(app, with_routing(allow_fallbacks=False))
    assert r.status_code == 502
    assert providers["pricey"].calls == []


async def test_max_fallback_attempts_caps_attempts(make: Any) -> None:
    app, providers = make(cheap="status", pricey="status")
    body = {
        "messages": MSG,
        "gateway": {"models": ["alpha", "beta"], "routing": {"max_fallback_attempts": 1}},
    }
    await post(app, body)
    assert len(providers["cheap"].calls) + len(providers["pricey"].calls) == 2


async def test_each_attempt_gets_the_full_body(make: Any) -> None:
    app, providers = make(cheap="status")
    await post(app)
    assert providers["cheap"].calls[0]["messages"] == MSG
    assert providers["pricey"].calls[0]["messages"] == MSG


async def test_client_error_from_provider_is_forwarded_not_retried(make: Any) -> None:
    app, providers = make(cheap="status")
    providers["cheap"].status = 400
    r = await post(app)
    assert r.status_code == 400
    assert providers["pricey"].calls == []


async def stream_lines(app: Any, body: dict[str, Any]) -> list[str]:
    async with client(app) as c:
        r = await c.post("/v1/chat/completions", json={**body, "stream": True})
    assert r.status_code == 200
    return [line for line in r.text.split("\n") if line.startswith("data: ")]


async def test_stream_500_before_first_byte_falls_back(make: Any) -> None:
    app, _ = make(cheap="status")
    lines = await stream_lines(app, BODY)
    final = json.loads(lines[-2][6:])
    assert final["routing_metadata"]["provider"] == "pricey"


async def test_midstream_failure_is_explicit_error_without_splicing(make: Any) -> None:
    app, providers = make(cheap="midstream")
    lines = await stream_lines(app, BODY)
    assert lines[-1] == "data: [DONE]"
    error = json.loads(lines[-2][6:])["error"]
    assert error["code"] == "upstream_error"
    assert providers["pricey"].calls == []
    assert not any("pricey" in line for line in lines)


async def test_dropped_stream_ends_with_error(make: Any) -> None:
    app, _ = make(cheap="drop")
    lines = await stream_lines(app, BODY)
    assert json.loads(lines[-2][6:])["error"]["code"] == "upstream_error"
    assert lines[-1] == "data: [DONE]"


async def test_in_band_error_frame_gets_no_metadata(make: Any) -> None:
    app, _ = make(cheap="error_frame")
    lines = await stream_lines(app, BODY)
    assert json.loads(lines[-2][6:])["error"]["message"] == "boom"
    assert not any("routing_metadata" in line for line in lines)


async def test_failed_stream_is_not_recorded_in_stats(make: Any) -> None:
    app, _ = make(cheap="drop")
    await stream_lines(app, BODY)
    assert app.stats.get("cheap", "alpha").samples == 0


async def test_deadline_mid_stream_is_explicit_timeout(make: Any) -> None:
    app, _ = make(cheap="wait_disconnect")
    messages: list[dict[str, Any]] = []
    body = json.dumps(
        {**BODY, "stream": True, "gateway": {"routing": {"deadline_ms": 50}}}
    ).encode()
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body}
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    with anyio.fail_after(5):
        await app(dict(CHAT_SCOPE), receive, send)
    tail = messages[-1]["body"].decode()
    assert '"code":"upstream_timeout"' in tail
    assert tail.endswith("data: [DONE]\n\n")


async def test_client_disconnect_cancels_provider(make: Any) -> None:
    app, providers = make(cheap="wait_disconnect")
    await stream_then_disconnect(app, BODY)
    assert providers["cheap"].cancelled
    assert providers["pricey"].calls == []


async def test_closed_connection_on_send_cancels_provider(make: Any) -> None:
    app, providers = make(cheap="wait_disconnect")
    body = json.dumps({**BODY, "stream": True}).encode()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            raise OSError("connection closed")  # ASGI 2.4 servers

    with anyio.fail_after(5):
        await app({**CHAT_SCOPE, "headers": []}, receive, send)
    assert providers["cheap"].cancelled


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 408])
async def test_retryable_statuses(make: Any, status: int) -> None:
    app, providers = make(cheap="status")
    providers["cheap"].status = status
    r = await post(app)
    assert r.json()["routing_metadata"]["provider"] == "pricey"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {**BODY, "stream": True}),
        ("/v1/responses", {"model": "alpha", "input": "hi", "stream": True}),
    ],
)
async def test_stream_all_fail_before_first_byte_is_a_real_error_status(
    make: Any, path: str, body: dict[str, Any]
) -> None:
    # responses-bridge.md §10 trap 19: never a 200 with opening frames and an in-band error.
    app, providers = make(cheap="status", pricey="status")
    async with client(app) as c:
        r = await c.post(path, json=body)
    assert r.status_code == 502
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == "upstream_error"
    assert len(providers["cheap"].calls) == len(providers["pricey"].calls) == 1
