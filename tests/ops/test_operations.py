"""akgate.ops: health and readiness, the access log, Prometheus metrics, OpenTelemetry traces,
driven with the openai SDK through the real stack."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI, Request
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

import akgate
from akgate import MemoryKeyStore
from akgate.auth._keys import generate_key
from akgate.ops import (
    AccessLog,
    HealthChecks,
    PrometheusMetrics,
    RequestIdFilter,
    Tracing,
    discover_checks,
)
from akgate.ops._accesslog import _TEXT_FIELDS, _text
from akgate.ops._stack import operations
from akgate.providers import UpstreamProvider
from tests.support.servers import RedisServer, free_port, run_uvicorn

MESSAGES = [{"role": "user", "content": "ping"}]


def http(app: Any, key: str | None = None) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers
    )


def sdk(app: Any, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url="http://test/v1", api_key=key, http_client=http(app), max_retries=0
    )


@pytest.fixture
def key() -> str:
    return generate_key("test")[0]


def demo_stack(key: str, **options: Any) -> Any:
    return akgate.gateway(akgate.DemoModel(), keys=[key], **options)


# -- health ---------------------------------------------------------------------------------


async def test_healthz_and_readyz_need_no_key_and_name_the_checks(key: str) -> None:
    app = HealthChecks(demo_stack(key))
    async with http(app) as client:
        alive = await client.get("/healthz")
        ready = await client.get("/readyz")
        v1 = await client.get("/v1/models")
    assert alive.status_code == 200
    assert alive.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"key_store": "ok"}}
    assert ready.headers["cache-control"] == "no-store"
    assert v1.status_code == 401  # everything else still goes through the gateway


async def test_readyz_is_503_naming_a_broken_key_store(key: str) -> None:
    class BrokenStore(MemoryKeyStore):
        async def lookup(self, key_hash: str) -> Any:
            raise akgate.KeyStoreUnavailable("redis://:secret@db down")

    app = HealthChecks(akgate.gateway(akgate.DemoModel(), keys=BrokenStore()))
    async with http(app) as client:
        ready = await client.get("/readyz")
        alive = await client.get("/healthz")
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unavailable",
        "checks": {"key_store": "failed: KeyStoreUnavailable"},
        "failing": ["key_store"],
    }
    assert "secret" not in ready.text
    assert alive.status_code == 200  # the process itself is fine


async def test_readyz_names_an_unreachable_upstream(key: str) -> None:
    upstream = UpstreamProvider(f"http://127.0.0.1:{free_port()}/v1")
    app = HealthChecks(akgate.gateway(upstream, keys=[key], models=["m"], demo=False))
    async with http(app) as client:
        ready = await client.get("/readyz")
    await upstream.aclose()
    assert ready.status_code == 503
    assert ready.json()["failing"] == ["upstream:app"]
    assert ready.json()["checks"]["key_store"] == "ok"


@pytest.mark.redis
async def test_readyz_checks_redis_and_fails_when_it_stops(
    key: str, redis_server_private: RedisServer
) -> None:
    store = akgate.RedisKeyStore(redis_server_private.url)
    app = HealthChecks(
        akgate.gateway(akgate.DemoModel(), keys=store, redis_url=redis_server_private.url)
    )
    assert set(discover_checks(app.app)) == {"key_store", "redis"}
    async with http(app) as client:
        assert (await client.get("/readyz")).status_code == 200
        redis_server_private.stop()
        ready = await client.get("/readyz")
    await store.aclose()
    assert ready.status_code == 503
    assert ready.json()["failing"] == ["key_store", "redis"]


async def test_health_paths_are_configurable_and_can_be_off(key: str) -> None:
    app = HealthChecks(demo_stack(key), healthz_path="/-/live", readyz_path=None)
    async with http(app) as client:
        assert (await client.get("/-/live")).status_code == 200
        assert (await client.get("/healthz")).status_code == 404
        assert (await client.get("/readyz")).status_code == 404
        assert (await client.post("/-/live")).status_code == 405
    with pytest.raises(ValueError):
        HealthChecks(demo_stack(key), healthz_path="healthz")


# -- access log ----------------------------------------------------------------------------


async def test_access_log_has_one_json_line_per_request_without_the_secret(
    key: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = AccessLog(demo_stack(key), format="json")
    caplog.set_level(logging.INFO, logger="akgate.access")
    async with sdk(app, key) as client:
        await client.chat.completions.create(model="demo", messages=MESSAGES)
        stream = await client.chat.completions.create(model="demo", messages=MESSAGES, stream=True)
        async for _ in stream:
            pass
        await client.responses.create(model="demo-reasoning", input="ping")
    async with http(app) as anonymous:
        await anonymous.get("/v1/models")
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "akgate.access"]
    assert len(lines) == 4
    chat, streamed, responses, denied = lines
    assert chat["key_id"] == key[:16]
    assert chat["workspace"] == "default"
    assert (chat["endpoint"], chat["model"], chat["provider"], chat["status"]) == (
        "chat_completions",
        "demo",
        "demo",
        200,
    )
    assert chat["input_tokens"] > 0
    assert chat["output_tokens"] > 0
    assert chat["cost_usd"] > 0
    assert chat["ttft_ms"] is None
    assert chat["duration_ms"] > 0
    assert streamed["stream"] is True
    assert streamed["ttft_ms"] > 0
    assert streamed["output_tokens"] == chat["output_tokens"]
    assert (responses["endpoint"], responses["model"]) == ("responses", "demo-reasoning")
    assert denied == {**denied, "status": 401, "error": "invalid_api_key", "key_id": None}
    assert all(line["request_id"].startswith("req_") for line in lines)
    assert key not in caplog.text


async def test_access_log_text_line(key: str, caplog: pytest.LogCaptureFixture) -> None:
    app = AccessLog(demo_stack(key))
    caplog.set_level(logging.INFO, logger="akgate.access")
    async with http(app, key) as client:
        response = await client.post(
            "/v1/chat/completions", json={"model": "demo", "messages": MESSAGES}
        )
    (record,) = [r for r in caplog.records if r.name == "akgate.access"]
    line = record.getMessage()
    assert line.startswith(f"{response.headers['x-request-id']} POST /v1/chat/completions 200 ")
    for part in (f"key_id={key[:16]}", "model=demo", "provider=demo", "input_tokens="):
        assert part in line


async def test_access_log_text_line_cannot_be_split_by_the_client(
    key: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The path is percent-decoded and the requested model is any JSON string: a line break in
    # either would start a forged line in a text log.
    app = AccessLog(demo_stack(key))
    caplog.set_level(logging.INFO, logger="akgate.access")
    forged = "x\nreq_forged POST /v1/admin 200 key_id=ak_live_admin"
    async with http(app, key) as client:
        await client.get("/v1/models%0Areq_forged%20GET%20/%5C%1B[31m")
        await client.post("/v1/chat/completions", json={"model": forged, "messages": MESSAGES})
    lines = [r.getMessage() for r in caplog.records if r.name == "akgate.access"]
    assert len(lines) == 2
    assert all("\n" not in line and "\x1b" not in line for line in lines)
    assert " GET /v1/models\\x0areq_forged GET /\\x5c\\x1b[31m 404 " in lines[0]
    assert "model=x\\x0areq_forged POST /v1/admin 200" in lines[1]


@given(text=st.text(max_size=40))
def test_a_text_line_is_one_printable_line_that_reads_back(text: str) -> None:
    fields: dict[str, Any] = dict.fromkeys(_TEXT_FIELDS)
    fields.update(request_id="req_1", method="GET", path="/" + text, status=200, model=text)
    line = _text(fields)
    assert not any(char in line for char in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
    assert line.splitlines() == [line]
    # Every escape stands for one character: the line can be read back exactly.
    decoded = re.sub(
        r"\\x([0-9a-f]{2})|\\u([0-9a-f]{4})", lambda m: chr(int(m[1] or m[2], 16)), line
    )
    assert decoded == f"req_1 GET /{text} 200 model={text}"


async def test_request_id_reaches_the_users_own_log_records(key: str) -> None:
    seen: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(self.format(record))

    handler = Capture()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter("%(request_id)s %(message)s"))
    user_logger = logging.getLogger("tests.ops.user_app")
    user_logger.addHandler(handler)
    user_logger.setLevel(logging.INFO)
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> dict[str, Any]:
        user_logger.info("answering")
        body = await request.json()
        return {
            "object": "chat.completion",
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "hi"},
                    "finish_reason": "stop",
                }
            ],
        }

    stack = akgate.gateway(app, keys=[key], models=["mine"])
    try:
        async with http(stack, key) as client:
            response = await client.post(
                "/v1/chat/completions", json={"model": "mine", "messages": MESSAGES}
            )
    finally:
        user_logger.removeHandler(handler)
    assert response.status_code == 200
    assert seen == [f"{response.headers['x-request-id']} answering"]


# -- metrics ---------------------------------------------------------------------------------


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_count_requests_tokens_cost_ttft_and_rejections() -> None:
    limited = akgate.auth.new_key_record(environment="test", rate_limit_rpm=1)
    store = MemoryKeyStore([limited.record])
    app = PrometheusMetrics(akgate.gateway(akgate.DemoModel(), keys=store))
    async with sdk(app, limited.key) as client:
        stream = await client.chat.completions.create(model="demo", messages=MESSAGES, stream=True)
        async for _ in stream:
            pass
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="demo", messages=MESSAGES)
    async with http(app) as scraper:
        scrape = await scraper.get("/metrics")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    found = samples(scrape.text)
    ok = {"endpoint": "chat_completions", "model": "demo", "provider": "demo"}
    assert value(found, "akgate_requests_total", **ok, status="200") == 1
    assert (
        value(
            found,
            "akgate_requests_total",
            endpoint="chat_completions",
            model="-",
            provider="-",
            status="429",
        )
        == 1
    )
    assert value(found, "akgate_rejections_total", reason="rate_limit") == 1
    assert value(found, "akgate_time_to_first_token_seconds_count", **ok) == 1
    assert value(found, "akgate_request_duration_seconds_count", **ok) == 1
    assert (
        value(found, "akgate_tokens_total", model="demo", provider="demo", direction="output") > 0
    )
    assert value(found, "akgate_cost_usd_total", model="demo", provider="demo") > 0
    assert value(found, "akgate_open_streams", endpoint="chat_completions") == 0


@pytest.mark.server
def test_metrics_count_fallbacks_and_open_streams(key: str) -> None:
    async def failing(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 503, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    catalog = {
        "models": {
            "m": {
                "providers": [
                    {"name": "app", "input_price": 0, "output_price": 0},
                    {"name": "demo", "model_id": "demo", "input_price": 1, "output_price": 1},
                ]
            }
        }
    }
    slow_demo = akgate.Provider("demo", akgate.DemoModel(token_delay=0.05), test=True)
    gate = akgate.gateway(failing, keys=[key], catalog=catalog, providers=[slow_demo])
    app = PrometheusMetrics(gate, path="/-/metrics")
    open_during: list[float] = []
    with (
        run_uvicorn(app) as base,
        openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0) as client,
    ):
        for _ in client.chat.completions.create(model="m", messages=MESSAGES, stream=True):
            if not open_during:
                found = samples(httpx.get(base + "/-/metrics").text)
                open_during.append(value(found, "akgate_open_streams", endpoint="chat_completions"))
        found = samples(httpx.get(base + "/-/metrics").text)
    assert open_during == [1]
    assert value(found, "akgate_fallbacks_total", endpoint="chat_completions") == 1
    assert value(found, "akgate_open_streams", endpoint="chat_completions") == 0
    assert (
        value(
            found,
            "akgate_requests_total",
            endpoint="chat_completions",
            model="m",
            provider="demo",
            status="200",
        )
        == 1
    )


# -- traces ----------------------------------------------------------------------------------


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


async def test_spans_follow_the_genai_conventions(
    key: str, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    app = Tracing(demo_stack(key), tracer_provider=provider)
    async with sdk(app, key) as client:
        await client.chat.completions.create(model="demo", messages=MESSAGES)
        stream = await client.responses.create(model="demo-reasoning", input="ping", stream=True)
        async for _ in stream:
            pass
    finished = exporter.get_finished_spans()
    servers = [s for s in finished if s.kind == SpanKind.SERVER]
    attempts = [s for s in finished if s.kind == SpanKind.CLIENT]
    assert [s.name for s in servers] == ["chat demo", "chat demo-reasoning"]
    chat = dict(servers[0].attributes or {})
    assert chat["gen_ai.operation.name"] == "chat"
    assert chat["gen_ai.request.model"] == "demo"
    assert chat["gen_ai.response.model"] == "demo"
    assert chat["gen_ai.provider.name"] == "demo"
    assert chat["gen_ai.usage.input_tokens"] > 0
    assert chat["gen_ai.usage.output_tokens"] > 0
    assert chat["gen_ai.response.finish_reasons"] == ("stop",)
    assert chat["http.response.status_code"] == 200
    assert chat["akgate.key_id"] == key[:16]
    assert chat["akgate.request_id"].startswith("req_")
    assert all(key not in str(v) for s in finished for v in (s.attributes or {}).values())
    assert len(attempts) == 2
    for attempt, server in zip(attempts, servers, strict=True):
        assert attempt.parent is not None
        assert attempt.parent.span_id == server.context.span_id
        assert attempt.attributes is not None
        assert attempt.attributes["gen_ai.provider.name"] == "demo"
        assert attempt.attributes["akgate.attempt.outcome"] == "ok"
    streamed = dict(servers[1].attributes or {})
    assert streamed["gen_ai.usage.output_tokens"] > 0
    assert "akgate.ttft_ms" in streamed


async def test_a_fallback_is_a_second_attempt_span(
    key: str, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans

    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("down")

    catalog = {
        "models": {
            "m": {
                "providers": [
                    {"name": "app", "input_price": 0, "output_price": 0},
                    {"name": "demo", "model_id": "demo", "input_price": 1, "output_price": 1},
                ]
            }
        }
    }
    app = Tracing(akgate.gateway(failing, keys=[key], catalog=catalog), tracer_provider=provider)
    async with sdk(app, key) as client:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    attempts = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CLIENT]
    outcomes = [(s.attributes or {}).get("akgate.attempt.outcome") for s in attempts]
    assert outcomes == ["failed", "ok"]
    assert [(s.attributes or {}).get("gen_ai.provider.name") for s in attempts] == ["app", "demo"]
    (server,) = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert (server.attributes or {})["akgate.fallbacks"] == 1


# -- composed ---------------------------------------------------------------------------------


async def test_operations_compose_and_probes_are_not_logged(
    key: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = operations(demo_stack(key), tracing=True)
    caplog.set_level(logging.INFO, logger="akgate.access")
    async with http(app, key) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/v1/models")).status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "akgate.access"]
    assert len(lines) == 1
    assert "/v1/models" in lines[0]


WORKER = """
import asyncio, sys
sys.path.insert(0, sys.argv[1])
import akgate
from akgate.ops import PrometheusMetrics

async def main():
    app = PrometheusMetrics(akgate.gateway(akgate.DemoModel(), keys=[sys.argv[2]]))
    messages = []
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    async def send(message):
        messages.append(message)
    for path in sys.argv[3:]:
        messages.clear()
        scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
                 "root_path": "", "query_string": b"", "headers": [], "http_version": "1.1"}
        await app(scope, receive, send)
    print(b"".join(m.get("body", b"") for m in messages).decode())

asyncio.run(main())
"""


def test_multiprocess_mode_sums_the_workers(key: str, tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, each worker process writes its samples and any worker's
    /metrics answers the sum (docs/operations.md, several worker processes)."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    middleware = str(Path(akgate.__file__).resolve().parents[1])

    def worker(*paths: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", WORKER, middleware, key, *paths],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    worker("/v1/models")  # two workers, one request each (401: no key sent); the second scrapes
    found = samples(worker("/v1/models", "/metrics"))
    assert (
        value(
            found,
            "akgate_requests_total",
            endpoint="models.list",
            model="-",
            provider="-",
            status="401",
        )
        == 2
    )


async def test_access_log_skips_the_paths_it_is_told_to(
    key: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = AccessLog(demo_stack(key), skip_paths=("/v1/me",))
    caplog.set_level(logging.INFO, logger="akgate.access")
    async with http(app, key) as client:
        await client.get("/v1/me")
        await client.get("/v1/models")
    lines = [r.getMessage() for r in caplog.records if r.name == "akgate.access"]
    assert len(lines) == 1
    assert " GET /v1/models 200 " in lines[0]


async def test_other_endpoints_are_named_after_the_endpoint_table(
    key: str, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    app = Tracing(demo_stack(key), tracer_provider=provider)
    async with http(app, key) as client:
        await client.get("/v1/models")
        await client.get("/v1/models/demo")
        await client.get("/")
    names = [s.name for s in exporter.get_finished_spans()]
    assert names == ["GET models.list", "GET models.retrieve", "GET other"]


async def test_budget_rejections_are_counted_from_the_error_code() -> None:
    from akgate.errors import GatewayError, send_error

    async def budgets(scope: Any, receive: Any, send: Any) -> None:  # a budget layer refusing
        await send_error(send, GatewayError("budget_exhausted", "The budget is spent."))

    app = PrometheusMetrics(budgets)
    async with http(app) as client:
        assert (await client.post("/v1/chat/completions", json={})).status_code == 429
        found = samples((await client.get("/metrics")).text)
    assert value(found, "akgate_rejections_total", reason="budget") == 1
    assert value(found, "akgate_rejections_total", reason="rate_limit") == 0


async def test_readyz_checks_the_response_store(key: str) -> None:
    app = HealthChecks(demo_stack(key, response_store="memory://"))
    async with http(app) as client:
        ready = await client.get("/readyz")
    assert ready.json() == {"status": "ok", "checks": {"key_store": "ok", "response_store": "ok"}}
