"""Routing alone answers a bad ``gateway`` object exactly as the validation layer does."""

from __future__ import annotations

from typing import Any

import pytest

from akgate import RequestValidation
from tests.routing.conftest import client

MSG = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    "gateway",
    [
        {"routing": {"max_fallback_attempts": 50}},
        {"routing": {"optimise": "cost"}},
        {"routing": {"optimize": "cheapest"}},
        {"routing": {"weights": {"cost": "a"}}},
    ],
)
async def test_routing_maps_schema_errors_like_validation(make: Any, gateway: Any) -> None:
    body = {"model": "alpha", "messages": MSG, "gateway": gateway}
    errors = []
    for wrap in (lambda app: app, RequestValidation):
        app, _ = make()
        async with client(wrap(app)) as c:
            r = await c.post("/v1/chat/completions", json=body)
        assert r.status_code == 400
        errors.append(r.json()["error"])
    assert errors[0] == errors[1]
    assert errors[0]["param"].startswith("gateway.")
