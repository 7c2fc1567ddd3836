"""``akgate.stack``: what ``gateway()`` builds, its defaults and its options."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from akgate.adapter import ResponsesAdapter
from akgate.auth import APIKeyAuth, MemoryKeyStore, RedisKeyStore, SQLiteKeyStore, create_key
from akgate.messages import MessagesAdapter
from akgate.routing import Provider, RedisStats, Routing
from akgate.stack import _DEFAULTS, Gateway, GatewayOptions, gateway
from akgate.validation import RequestValidation
from tests.support.servers import RedisServer

from .apps import completion

CHAT = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}


async def chat_app(scope: Any, receive: Any, send: Any) -> None:
    """A raw ASGI chat-completions app (answers every request)."""
    while (await receive()).get("more_body"):
        pass
    import json

    body = json.dumps(completion("echo", "plain")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def post(app: Any, path: str, body: Any, key: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        return await http.post(path, json=body, headers=headers)


def chain(app: Any) -> list[type]:
    layers = []
    while hasattr(app, "app"):
        layers.append(type(app))
        app = app.app
    return layers


def test_gateway_stacks_auth_validation_routing_outermost_first(key: str) -> None:
    stack = gateway(chat_app, keys=[key], models=["echo"])
    assert chain(stack.app) == [APIKeyAuth, RequestValidation, Routing]


def test_gateway_without_routing_puts_the_adapter_over_the_app(key: str) -> None:
    stack = gateway(chat_app, keys=[key], routing=False)
    assert chain(stack.app) == [
        APIKeyAuth,
        RequestValidation,
        MessagesAdapter,
        ResponsesAdapter,
    ]


def test_each_layer_can_be_turned_off() -> None:
    stack = gateway(
        chat_app, auth=False, validation=False, routing=False, adapter=False, messages=False
    )
    assert stack.app is chat_app


def test_gateway_and_the_class_take_the_one_options_type() -> None:
    # One source: both take ``app`` and then exactly GatewayOptions' keys, which all have defaults.
    for build in (gateway, Gateway.__init__):
        params = list(inspect.signature(build).parameters.values())
        options = params[-1]
        assert params[-2].name == "app"
        assert options.kind is inspect.Parameter.VAR_KEYWORD
        assert options.annotation == "Unpack[GatewayOptions]"
    assert _DEFAULTS.keys() == GatewayOptions.__optional_keys__
    assert not GatewayOptions.__required_keys__


@pytest.mark.parametrize("build", [gateway, Gateway], ids=["function", "class"])
def test_an_unknown_option_is_a_type_error(build: Any) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'modles'"):
        build(chat_app, modles=["echo"])


def test_the_docs_table_lists_every_option() -> None:
    text = (Path(__file__).parents[2] / "docs" / "frameworks.md").read_text()
    table = text.split("### Options", 1)[1].split("\n\n", 2)[1]
    documented = [
        name for row in table.splitlines()[2:] for name in re.findall(r"`(\w+)`", row.split("|")[1])
    ]
    assert sorted(documented) == sorted(GatewayOptions.__optional_keys__)


def test_keys_as_a_string_is_a_configuration_error(key: str) -> None:
    with pytest.raises(ValueError, match="not a string"):
        gateway(chat_app, keys=key)  # type: ignore[arg-type]


def test_nothing_to_route_is_a_configuration_error(key: str) -> None:
    with pytest.raises(ValueError, match="nothing to route"):
        gateway(chat_app, keys=[key], demo=False)


def test_models_without_routing_is_a_configuration_error(key: str) -> None:
    with pytest.raises(ValueError, match="routing"):
        gateway(chat_app, keys=[key], models=["echo"], routing=False)


def test_default_key_store_is_the_sqlite_file_under_akgate_home(tmp_path: Any) -> None:
    stack = gateway(chat_app, models=["echo"]).app
    assert isinstance(stack, APIKeyAuth)
    assert isinstance(stack.store, SQLiteKeyStore)
    assert stack.store.path == tmp_path / "keys.sqlite3"


async def test_default_key_store_reads_akgate_api_keys(
    key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AKGATE_API_KEYS", key)
    response = await post(gateway(chat_app, models=["echo"]), "/v1/chat/completions", CHAT, key)
    assert response.status_code == 200


async def test_the_app_serves_its_models_to_test_keys(test_key: str) -> None:
    stack = gateway(chat_app, keys=[test_key], models=["echo"])
    response = await post(stack, "/v1/chat/completions", CHAT, test_key)
    assert response.json()["routing_metadata"]["provider"] == "app"


async def test_demo_models_are_served_beside_the_app(key: str) -> None:
    stack = gateway(chat_app, keys=[key], models=["echo"])
    response = await post(stack, "/v1/chat/completions", {**CHAT, "model": "demo"}, key)
    assert response.json()["routing_metadata"]["provider"] == "demo"


async def test_model_mapping_gives_prices_and_aliases(key: str) -> None:
    models = {"echo": {"input_price": 1000.0, "output_price": 1000.0, "aliases": ["e"]}}
    stack = gateway(chat_app, keys=[key], models=models)
    response = await post(stack, "/v1/chat/completions", {**CHAT, "model": "e"}, key)
    metadata = response.json()["routing_metadata"]
    assert metadata["model_canonical"] == "echo"
    assert metadata["cost"]["usd"] > 0


async def test_adapter_off_keeps_the_apps_models_off_responses(key: str) -> None:
    stack = gateway(chat_app, keys=[key], models=["echo"], adapter=False)
    response = await post(stack, "/v1/responses", {"model": "echo", "input": "hi"}, key)
    assert response.status_code == 400


async def test_adapter_options_reach_the_adapter_under_routing(key: str) -> None:
    stack = gateway(chat_app, keys=[key], models=["echo"], adapter_options={"send_done": True})
    body = {"model": "echo", "input": "hi", "stream": True}
    response = await post(stack, "/v1/responses", body, key)
    assert response.text.rstrip().endswith("data: [DONE]")


async def test_max_body_size_caps_every_layer(key: str) -> None:
    stack = gateway(chat_app, keys=[key], models=["echo"], max_body_size=64)
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 100}]}
    response = await post(stack, "/v1/chat/completions", big, key)
    assert response.status_code == 413


async def test_extra_providers_are_routable(key: str) -> None:
    other = Provider("other", chat_app)
    catalog = {
        "models": {
            "remote": {"providers": [{"name": "other", "input_price": 1, "output_price": 1}]}
        }
    }
    stack = gateway(chat_app, keys=[key], catalog=catalog, providers=[other], models=["echo"])
    response = await post(stack, "/v1/chat/completions", {**CHAT, "model": "remote"}, key)
    assert response.json()["routing_metadata"]["provider"] == "other"


@pytest.mark.redis
async def test_redis_url_shares_keys_limits_and_stats_between_workers(
    redis_server: RedisServer,
) -> None:
    redis_server.flush()
    store = RedisKeyStore(redis_server.url)
    new = await create_key(store, name="shared", rate_limit_rpm=1)
    await store.aclose()
    workers = [gateway(chat_app, redis_url=redis_server.url, models=["echo"]) for _ in range(2)]
    auth = workers[0].app
    assert isinstance(auth, APIKeyAuth)
    assert isinstance(auth.store, RedisKeyStore)
    routing = auth.app.app
    assert isinstance(routing, Routing)
    assert isinstance(routing.stats, RedisStats)
    try:
        first = await post(workers[0], "/v1/chat/completions", CHAT, new.key)
        second = await post(workers[1], "/v1/chat/completions", CHAT, new.key)
    finally:
        for worker in workers:
            await worker.aclose()
    assert (first.status_code, second.status_code) == (200, 429)


class Recording:
    """A resource that records being closed."""

    def __init__(self) -> None:
        self.closed = 0

    async def aclose(self) -> None:
        self.closed += 1


async def lifespan(app: Any) -> list[str]:
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    return sent


async def test_resources_created_by_gateway_close_after_lifespan_shutdown(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def app_with_lifespan(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        else:
            await chat_app(scope, receive, send)

    stack = gateway(app_with_lifespan, models=["echo"])
    store = stack.app.store  # the default SQLite store: created by gateway(), closed by it
    assert stack.resources == (store,)
    closed = Recording()
    monkeypatch.setattr(store, "aclose", closed.aclose)
    assert await lifespan(stack) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert closed.closed == 1


def test_a_key_store_passed_in_stays_the_callers(key: str) -> None:
    store = MemoryKeyStore.from_keys([key])
    assert gateway(chat_app, keys=store, models=["echo"]).resources == ()
