"""``akgate serve --upstream`` end to end: the stack fronts a local uvicorn serving DemoModel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import openai
import pytest

from akgate._serve import ServeConfig, build_app
from akgate.auth import MemoryKeyStore, ensure_demo_key
from akgate.providers import DemoModel
from tests.support.servers import free_port, run_uvicorn

from .conftest import assert_envelope
from .test_streaming import sse_events

pytestmark = pytest.mark.server

TEXT = 'Hello! I am the akgate demo model. You said: "hi"'
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with run_uvicorn(DemoModel()) as base:
        yield base + "/v1"


@pytest.fixture(scope="module")
def fronted(upstream: str) -> Iterator[tuple[str, str]]:
    store = MemoryKeyStore()
    key = anyio.run(ensure_demo_key, store)
    assert key is not None
    with run_uvicorn(build_app(ServeConfig(upstream=upstream), keys=store)) as base:
        yield base, key


@pytest.fixture
def sdk(fronted: tuple[str, str]) -> Iterator[openai.OpenAI]:
    base, key = fronted
    with openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0) as client:
        yield client


def test_upstream_models_are_listed(sdk: openai.OpenAI) -> None:
    assert {m.id for m in sdk.models.list()} == {"demo", "demo-reasoning"}


def test_chat_json_and_stream_reach_the_upstream(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(model="demo", messages=MESSAGES)  # type: ignore[arg-type]
    assert completion.choices[0].message.content == TEXT
    assert completion.model_extra is not None
    assert completion.model_extra["routing_metadata"]["provider"] == "upstream"
    stream = sdk.chat.completions.create(
        model="demo-reasoning",
        messages=MESSAGES,
        stream=True,  # type: ignore[arg-type]
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == TEXT


def test_responses_through_the_adapter_over_the_upstream(sdk: openai.OpenAI) -> None:
    assert sdk.responses.create(model="demo", input="hi").output_text == TEXT
    with sdk.responses.stream(model="demo-reasoning", input="hi") as stream:
        final = stream.get_final_response()
    assert final.output_text == TEXT


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses"])
def test_upstream_429_keeps_retry_after(fronted: tuple[str, str], path: str) -> None:
    base, key = fronted
    body = (
        {"model": "demo", "messages": MESSAGES}
        if "chat" in path
        else {"model": "demo", "input": "hi"}
    )
    response = httpx.post(
        base + path,
        json=body,
        headers={"authorization": f"Bearer {key}", "x-demo-fault": "status=429"},
    )
    assert_envelope(response, 429, "rate_limit_exceeded")
    assert response.headers["retry-after"] == "1"


def test_upstream_midstream_failure_is_an_error_event(fronted: tuple[str, str]) -> None:
    base, key = fronted
    response = httpx.post(
        base + "/v1/chat/completions",
        json={"model": "demo", "messages": MESSAGES, "stream": True},
        headers={"authorization": f"Bearer {key}", "x-demo-fault": "midstream=2"},
    )
    events = sse_events(response)
    assert events[-1][1] == "[DONE]"
    assert json.loads(events[-2][1])["error"]["code"]


def test_upstream_drop_on_responses_ends_with_response_failed(fronted: tuple[str, str]) -> None:
    base, key = fronted
    response = httpx.post(
        base + "/v1/responses",
        json={"model": "demo", "input": "hi", "stream": True},
        headers={"authorization": f"Bearer {key}", "x-demo-fault": "drop"},
    )
    names = [name for name, _ in sse_events(response)]
    assert names[-2:] == ["error", "response.failed"]


def test_upstream_truncated_json_is_a_502(fronted: tuple[str, str]) -> None:
    base, key = fronted
    response = httpx.post(
        base + "/v1/chat/completions",
        json={"model": "demo", "messages": MESSAGES},
        headers={"authorization": f"Bearer {key}", "x-demo-fault": "drop"},
    )
    assert_envelope(response, 502, "upstream_error")


def test_unreachable_upstream_is_a_502() -> None:
    store = MemoryKeyStore()
    key = anyio.run(ensure_demo_key, store)
    dead = f"http://127.0.0.1:{free_port()}/v1"
    app = build_app(ServeConfig(upstream=dead, models=("m",)), keys=store)
    with run_uvicorn(app) as base:
        response = httpx.post(
            base + "/v1/chat/completions",
            json={"model": "m", "messages": MESSAGES},
            headers={"authorization": f"Bearer {key}"},
        )
    assert_envelope(response, 502, "upstream_error")


def test_serve_subprocess_with_upstream(upstream: str, tmp_path: Path) -> None:
    middleware = str(Path(__file__).resolve().parents[2] / "middleware")
    env = {**os.environ, "AKGATE_HOME": str(tmp_path), "PYTHONPATH": middleware}
    env.pop("OPENAI_API_KEY", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "akgate", "serve", "--port", "0", "--upstream", upstream],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        base = key = None
        for line in process.stdout:
            if "Base URL:" in line:
                base = line.split("Base URL:")[1].strip()
            if "API key:" in line:
                key = line.split("API key:")[1].split()[0]
            if "Ctrl-C" in line:
                break
        assert base is not None
        assert key is not None
        with openai.OpenAI(base_url=base, api_key=key, max_retries=0) as client:
            reply = client.chat.completions.create(model="demo", messages=MESSAGES)  # type: ignore[arg-type]
            assert reply.choices[0].message.content == TEXT
            assert client.responses.create(model="demo", input="hi").output_text == TEXT
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert process.returncode == 0
