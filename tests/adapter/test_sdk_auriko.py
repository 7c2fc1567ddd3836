"""Conformance with the auriko SDK: JSON, streaming, routing_metadata."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import auriko
import httpx
import pytest

from akgate.adapter import ResponsesAdapter
from akgate.providers.demo import DemoModel
from tests.support.servers import run_uvicorn

from .scripted import USAGE, chunk, completion, json_app, stream_app

META = {
    "provider": "demo",
    "provider_model_id": "demo-1",
    "model_canonical": "demo",
    "routing_strategy": "balanced",
    "cost": {"usd": 0.001},
}


@pytest.fixture(scope="module")
def demo_url() -> Iterator[str]:
    with run_uvicorn(ResponsesAdapter(DemoModel())) as url:
        yield url


@contextmanager
def client(url: str) -> Iterator[auriko.Client]:
    with auriko.Client(api_key="ak_test_x", base_url=url + "/v1", max_retries=0) as c:
        yield c


def test_create_json(demo_url: str) -> None:
    with client(demo_url) as c:
        response = c.responses.create(model="demo", input="Say hello")
    assert response.status == "completed"
    assert response.output_text == "Hello!"
    assert response.output[0].type == "message"


def test_create_stream(demo_url: str) -> None:
    with client(demo_url) as c:
        stream = c.responses.create(model="demo", input="Say hello", stream=True)
        types = [event.type for event in stream]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    assert stream.completed_response is not None
    assert stream.completed_response.output_text == "Hello!"


def test_stream_midstream_fault_raises() -> None:
    app = ResponsesAdapter(DemoModel(fault="midstream=2"))
    with run_uvicorn(app) as url, client(url) as c:
        stream = c.responses.create(model="demo", input="Say hello", stream=True)
        with pytest.raises(auriko.AurikoAPIError):
            list(stream)


async def test_routing_metadata_json_over_asgi_transport() -> None:
    app = ResponsesAdapter(json_app(completion({"content": "x"}, routing_metadata=META)))
    c = auriko.AsyncClient(api_key="ak_test_x", base_url="http://t/v1", max_retries=0)
    c._httpx = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t/v1", headers=c._default_headers
    )
    async with c:
        response = await c.responses.create(model="m", input="hi")
    assert response.routing_metadata is not None
    assert response.routing_metadata.provider == "demo"


def test_routing_metadata_stream() -> None:
    chunks: list[Any] = [
        chunk({"content": "x"}),
        chunk({}, "stop"),
        chunk(choices=False, usage=USAGE, routing_metadata=META),
        "[DONE]",
    ]
    with run_uvicorn(ResponsesAdapter(stream_app(chunks))) as url, client(url) as c:
        stream = c.responses.create(model="m", input="hi", stream=True)
        list(stream)
    assert stream.completed_response is not None
    meta = stream.completed_response.routing_metadata
    assert meta is not None
    assert meta.provider_model_id == "demo-1"
