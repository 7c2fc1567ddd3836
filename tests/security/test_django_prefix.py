"""Django mount: every variant of a gateway path goes to the gateway (which refuses it), never
to Django, which would read it differently."""

from __future__ import annotations

from typing import Any

import pytest

from akgate.auth._keys import generate_key
from akgate.contrib.django import PrefixDispatcher
from akgate.stack import gateway
from tests.support.raw import call_raw

seen: list[str] = []
KEY = generate_key()[0]


async def django_app(scope: Any, receive: Any, send: Any) -> None:
    seen.append(scope["path"])
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"django"})


@pytest.mark.parametrize(
    "path", ["/V1/whoami", "//v1/whoami", "/static/../v1/whoami", "/v1/./whoami", "/v1;x/whoami"]
)
async def test_path_variants_reach_the_gateway_and_are_refused(path: str) -> None:
    seen.clear()
    dispatcher = PrefixDispatcher(django_app, gateway(django_app, keys=[KEY], models=["m"]))
    response = await call_raw(dispatcher, "GET", path)
    assert response.status == 404
    assert response.json()["error"]["code"] == "resource_not_found"
    assert seen == []


async def test_other_paths_stay_djangos() -> None:
    seen.clear()
    dispatcher = PrefixDispatcher(django_app, gateway(django_app, keys=[KEY], models=["m"]))
    for path in ("/admin/", "/v10/x", "/"):
        assert (await call_raw(dispatcher, "GET", path)).status == 200
    assert seen == ["/admin/", "/v10/x", "/"]
