"""Django: the stack mounted at /v1 beside Django's real ASGIHandler."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import openai
import pytest
from django.core.asgi import get_asgi_application

from akgate.contrib.django import PrefixDispatcher, get_identity, mount

from .apps import http_scope, run_asgi
from .django_setup import setup_django

setup_django()

CHAT = {"model": "django-echo", "messages": [{"role": "user", "content": "hi"}]}
MESSAGE: dict[str, Any] = {
    "model": "django-echo",
    "max_tokens": 50,
    "messages": [{"role": "user", "content": "Hello"}],
}


@pytest.fixture
def application(key: str) -> PrefixDispatcher:
    return mount(get_asgi_application(), keys=[key], models=["django-echo"])


def client(app: Any, key: str | None = None) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
    )


async def test_django_chat_view_is_served_behind_the_layers(
    application: PrefixDispatcher, key: str
) -> None:
    async with client(application, key) as http:
        response = await http.post("/v1/chat/completions", json=CHAT)
    body = response.json()
    assert body["choices"][0]["message"]["content"] == "Django says: hi"
    assert body["routing_metadata"]["provider"] == "app"


async def test_django_chat_view_needs_a_key(application: PrefixDispatcher) -> None:
    async with client(application) as http:
        response = await http.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 401


async def test_responses_are_served_over_the_django_chat_view(
    application: PrefixDispatcher, key: str
) -> None:
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="http://testserver"
    )
    async with openai.AsyncOpenAI(
        api_key=key, base_url="http://testserver/v1", http_client=http, max_retries=0
    ) as sdk:
        response = await sdk.responses.create(model="django-echo", input="Hello")
        stream = await sdk.responses.create(model="django-echo", input="Hello", stream=True)
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
    assert response.output_text == "Django says: Hello"
    assert "".join(deltas).strip() == "Django says: Hello"


async def test_ordinary_django_page_is_untouched(application: PrefixDispatcher) -> None:
    async with client(application) as http:
        response = await http.get("/")
    assert response.status_code == 200
    assert "x-request-id" not in response.headers
    assert "ordinary Django page" in response.text


async def test_django_view_under_v1_reads_the_identity(
    application: PrefixDispatcher, key: str
) -> None:
    async with client(application, key) as http:
        response = await http.get("/v1/whoami")
    assert response.json() == {"key_id": key[:16]}


async def test_prefix_is_matched_below_root_path(application: PrefixDispatcher) -> None:
    scope = http_scope("/site/v1/whoami", root_path="/site")
    messages = await run_asgi(application, scope)
    assert messages[0]["status"] == 401  # the gateway answered, not Django


async def test_a_path_that_only_starts_like_the_prefix_goes_to_django(
    application: PrefixDispatcher,
) -> None:
    async with client(application) as http:
        response = await http.get("/v1x")
    assert response.status_code == 404
    assert "x-request-id" not in response.headers


async def test_lifespan_is_answered_by_the_mount() -> None:
    application = mount(get_asgi_application(), gateway_app=get_asgi_application())
    incoming = [{"type": "lifespan.shutdown"}, {"type": "lifespan.startup"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await application({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_lifespan_goes_to_django_when_the_mount_does_not_handle_it() -> None:
    django_app = get_asgi_application()
    application = mount(django_app, gateway_app=django_app, handle_lifespan=False)
    with pytest.raises(ValueError, match="lifespan"):
        await application({"type": "lifespan"}, None, None)  # type: ignore[arg-type]


def test_mount_refuses_a_prefix_with_a_trailing_slash() -> None:
    with pytest.raises(ValueError, match="prefix"):
        mount(get_asgi_application(), prefix="/v1/", gateway_app=get_asgi_application())


def test_get_identity_is_none_outside_the_gateway() -> None:
    from django.test import RequestFactory

    assert get_identity(RequestFactory().get("/")) is None


async def test_responses_over_django_leave_no_orphaned_task_exception(
    application: PrefixDispatcher, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Django's handler collects its disconnect listener after the view returns: the adapter
    must let it, or asyncio logs "Task exception was never retrieved ... RequestAborted"."""
    import gc

    caplog.set_level(logging.ERROR, logger="asyncio")
    async with client(application, key) as http:
        for stream in (False, True):
            payload = {"model": "django-echo", "input": "Hello", "stream": stream}
            response = await http.post("/v1/responses", json=payload)
            assert response.status_code == 200
    gc.collect()  # an orphaned task reports its exception when it is collected
    await asyncio.sleep(0)
    orphaned = [r for r in caplog.records if "never retrieved" in r.getMessage()]
    assert not orphaned, orphaned[0].getMessage()


@pytest.mark.server
def test_responses_over_django_under_uvicorn_log_no_orphaned_task(
    application: PrefixDispatcher, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The same over a real server, with the openai SDK: no asyncio error record at all."""
    import gc

    from tests.support.servers import run_uvicorn

    caplog.set_level(logging.ERROR, logger="asyncio")
    with (
        run_uvicorn(application, lifespan="on") as base,
        openai.OpenAI(api_key=key, base_url=base + "/v1", max_retries=0) as sdk,
    ):
        assert sdk.responses.create(model="django-echo", input="Hello").output_text
        events = list(sdk.responses.create(model="django-echo", input="Hello", stream=True))
        assert events[-1].type == "response.completed"
        gc.collect()
    gc.collect()
    assert not [r for r in caplog.records if r.name == "asyncio"], caplog.text


async def test_messages_over_django_leave_no_orphaned_task_exception(
    application: PrefixDispatcher, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The same on /v1/messages: once the inner answer is complete, a client disconnect must
    not cancel Django's handler while it collects its disconnect listener."""
    import gc

    caplog.set_level(logging.ERROR, logger="asyncio")
    async with client(application, key) as http:
        for stream in (False, True):
            payload = {**MESSAGE, "stream": stream}
            response = await http.post("/v1/messages", json=payload)
            assert response.status_code == 200
            assert "message_stop" in response.text if stream else response.json()["content"]
    gc.collect()  # an orphaned task reports its exception when it is collected
    await asyncio.sleep(0)
    orphaned = [r for r in caplog.records if "never retrieved" in r.getMessage()]
    assert not orphaned, orphaned[0].getMessage()


@pytest.mark.server
def test_messages_over_django_under_uvicorn_log_no_orphaned_task(
    application: PrefixDispatcher, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The same over a real server, with the anthropic SDK: no asyncio error record at all."""
    import gc

    import anthropic

    from tests.support.servers import run_uvicorn

    caplog.set_level(logging.ERROR, logger="asyncio")
    with (
        run_uvicorn(application, lifespan="on") as base,
        anthropic.Anthropic(api_key=key, base_url=base, max_retries=0) as sdk,
    ):
        message = sdk.messages.create(**MESSAGE)
        assert message.content[0].type == "text"
        assert message.content[0].text == "Django says: Hello"
        with sdk.messages.stream(**MESSAGE) as stream:
            assert stream.get_final_message().stop_reason == "end_turn"
        gc.collect()
    gc.collect()
    assert not [r for r in caplog.records if r.name == "asyncio"], caplog.text


async def test_health_checks_find_the_key_store_behind_the_django_mount(
    application: PrefixDispatcher,
) -> None:
    from akgate.ops import HealthChecks

    app = HealthChecks(application)
    assert set(app.checks) == {"key_store"}
    async with client(app) as http:
        ready = await http.get("/readyz")
        page = await http.get("/")
    assert ready.json() == {"status": "ok", "checks": {"key_store": "ok"}}
    assert page.status_code == 200
