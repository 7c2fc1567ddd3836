"""``akgate serve`` is lenient with hosted tools, over the demo model and over an upstream."""

from __future__ import annotations

from typing import Any

import pytest

from akgate import MemoryKeyStore, Routing
from akgate._serve import ServeConfig, build_app
from akgate.adapter import ResponsesAdapter


def routing_of(app: Any) -> Routing:
    while not isinstance(app, Routing):
        app = app.app
    return app


@pytest.mark.parametrize(
    "config",
    [ServeConfig(), ServeConfig(upstream="http://127.0.0.1:9/v1", models=("m",))],
    ids=["demo", "upstream"],
)
def test_serve_builds_lenient_adapters(config: ServeConfig) -> None:
    routing = routing_of(build_app(config, keys=MemoryKeyStore()))
    assert routing.hosted_tools == "lenient"
    adapters = [app for app in routing._apps.values() if isinstance(app, ResponsesAdapter)]
    assert adapters
    assert {adapter.options.hosted_tools for adapter in adapters} == {"lenient"}
