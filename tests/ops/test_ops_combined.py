"""``operations()`` serves the usual request in one step (``akgate.ops._combined``): what the
server gets, the access lines and the metrics are those of the composed layers it skips; and
the observation's one pass over the response headers gives what the two rules it replaces give."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from akgate._asgi import find_header
from akgate.context import RequestContext, open_context, with_request_id
from akgate.ops import HealthChecks
from akgate.ops._combined import Operations
from akgate.ops._observe import Observation, answered, observed_request
from akgate.ops._stack import operations
from tests.ops.strategies import starts

ROUTING = {
    "metadata": {
        "model_canonical": "demo",
        "provider": "demo",
        "provider_model_id": "demo-1",
        "cost": {"usd": 0.25},
    },
    "attempts": [{"provider": "app"}, {"provider": "demo"}],
    "tokens": (3, 5),
}


async def inner(scope: Any, receive: Any, send: Any) -> None:
    """An app whose answer depends on the path: JSON, a stream, a refusal, a crash, a
    disconnect; it records routing as routing would."""
    if scope["type"] == "lifespan":
        return
    ctx: RequestContext = scope["akgate"]
    ctx.state["routing"] = ROUTING
    ctx.endpoint = "chat_completions"
    kind = scope["path"].rsplit("/", 1)[-1]
    if kind == "crash":
        raise RuntimeError("boom")
    if kind == "gone":
        raise asyncio.CancelledError
    if kind == "stream":
        headers = [(b"Content-Type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"data: {}\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})
        return
    if kind == "refused":
        body = b'{"error": {"code": "budget_exhausted", "type": "x"}}'
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    headers = [(b"content-type", b"application/json")]
    if kind == "own-id":
        headers.append((b"X-Request-ID", b"from-app"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b'{"ok": true}'})


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


_PATHS = ["json", "stream", "refused", "crash", "gone", "own-id"]


async def _drive(
    app: Any, requests: list[tuple[str, str, bytes | None]], outer: bool = False
) -> list[Any]:
    seen: list[Any] = []
    for method, path, request_id in requests:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any], sent: list[dict[str, Any]] = sent) -> None:
            sent.append(message)

        headers = [(b"x-request-id", request_id)] if request_id else []
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "root_path": "",
            "query_string": b"",
            "headers": headers,
        }
        if outer:  # an akgate layer outside made the context
            scope, _ = open_context(scope)
        raised = None
        try:
            await app(scope, receive, send)
        except (RuntimeError, asyncio.CancelledError) as exc:
            raised = type(exc).__name__
        generated = re.compile(rb"req_[0-9a-f]{24}")
        for message in sent:
            if message["type"] == "http.response.start":
                message["headers"] = [(n, generated.sub(b"req_", v)) for n, v in message["headers"]]
            if path == "/metrics":  # the histogram buckets depend on timing
                message.pop("body", None)
                message.pop("headers", None)
        seen.append((sent, raised))
    return seen


def _samples(app: Any) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    from prometheus_client import generate_latest

    metrics = app.app.app  # HealthChecks -> PrometheusMetrics
    found = set()
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for sample in family.samples:
            if sample.name.endswith(("_bucket", "_sum", "_created")):
                continue  # timing
            found.add((sample.name, tuple(sorted(sample.labels.items())), sample.value))
    return found


@given(
    requests=st.lists(
        st.tuples(
            st.sampled_from(["POST", "GET"]),
            st.sampled_from(
                [f"/v1/chat/completions/{p}" for p in _PATHS]
                + ["/healthz", "/readyz", "/metrics", "/skipped", "/v1/models"]
            ),
            st.sampled_from([None, b"req_from_client"]),
        ),
        max_size=6,
    ),
    outer=st.booleans(),
)
async def test_the_one_step_gives_what_the_layers_give(
    requests: list[tuple[str, str, bytes | None]], outer: bool
) -> None:
    logger = logging.getLogger("akgate.access")
    results = []
    for one_step in (True, False):
        collect = Collect()
        logger.addHandler(collect)
        level, propagate = logger.level, logger.propagate
        logger.setLevel(logging.INFO)
        logger.propagate = False
        try:
            app = operations(inner, tracing=True, healthz_path="/healthz", metrics_path="/metrics")
            assert isinstance(app, Operations)
            access = app.app.app.app.app  # Health -> Metrics -> Tracing -> AccessLog
            access.skip_paths = frozenset({"/skipped"})
            app._skip_paths = access.skip_paths
            served = await _drive(app if one_step else app.app, requests, outer)
        finally:
            logger.removeHandler(collect)
            logger.setLevel(level)
            logger.propagate = propagate
        lines = [
            re.sub(r"(duration|ttft)_ms=\S+|req_[0-9a-f]{24}", "", line) for line in collect.lines
        ]
        results.append((served, lines, _samples(app)))
    assert results[0] == results[1]


def test_operations_keep_every_layer_reachable() -> None:
    app = operations(inner, tracing=False, metrics_path=None, access_log=False)
    assert isinstance(app, Operations)
    assert isinstance(app.app, HealthChecks)  # readiness discovery follows .app
    assert app.app.app is inner
    assert (
        operations(
            inner,
            healthz_path=None,
            readyz_path=None,
            metrics_path=None,
            access_log=False,
            tracing=False,
        )
        is inner
    )


@given(start=starts, request_id=st.sampled_from([None, b"req_1"]))
async def test_the_start_scan_is_the_two_rules(
    start: dict[str, Any], request_id: bytes | None
) -> None:
    """One pass over the start's headers: what with_request_id adds, and the stream flag of
    the first content type (find_header), as the observation found them with two."""
    got: list[Any] = []

    async def server(message: Any) -> None:
        got.append(message)

    ctx = RequestContext()
    obs = Observation({"path": "/v1/chat/completions"}, ctx)
    await obs.wrap(server, request_id)(dict(start))
    expected = with_request_id(start, request_id) if request_id is not None else start
    assert got == [expected]
    content_type = find_header(start["headers"], b"content-type") or b""
    assert obs.stream is content_type.lower().startswith(b"text/event-stream")


def test_answered_is_computed_once_the_request_finished() -> None:
    _, _, ctx, obs = observed_request({"type": "http", "path": "/v1/x", "headers": []}, None)  # type: ignore[arg-type]
    ctx.state["routing"] = {"tokens": (1, 2), "attempts": [{"provider": "p"}]}
    before = answered(obs)  # not finished: read afresh every time
    ctx.state["routing"] = dict(ROUTING)
    assert answered(obs) != before
    obs.finish()
    first = answered(obs)
    assert first == ("demo", "demo", (3, 5), 0.25, 1)
    assert answered(obs) is first
    ctx.state["routing"] = {}
    obs.finish()  # a second finish reads routing again
    assert answered(obs) == (None, None, None, None, 0)


@pytest.mark.parametrize("layout", ["one step", "layers", "metrics", "access log", "tracing"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/models"])
async def test_a_request_leaves_no_reference_cycle_behind(path: str, layout: str) -> None:
    """The observation and the request context referred to each other: each request's context,
    observation and what hangs off them waited for the garbage collector. Now the layer that
    made the observation frees them as the request ends, in one step or alone (only objects of
    these types are looked for: other tests' threads may leave garbage of their own)."""
    import akgate
    from akgate.auth._keys import generate_key
    from akgate.ops import AccessLog, PrometheusMetrics, Tracing

    key = generate_key("test")[0]
    gateway = akgate.gateway(akgate.DemoModel(), keys=[key])
    app: Any = {
        "one step": lambda: operations(gateway, tracing=True),
        "layers": lambda: operations(gateway, tracing=True).app,
        "metrics": lambda: PrometheusMetrics(gateway),
        "access log": lambda: AccessLog(gateway),
        "tracing": lambda: Tracing(gateway, tracer_provider=_recording_provider()),
    }[layout]()
    transport = httpx.ASGITransport(app=app)
    headers = {"authorization": f"Bearer {key}"}
    body = {"model": "demo", "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        for _ in range(3):
            await c.post(path, json=body) if "chat" in path else await c.get(path)
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(5):
                answer = await c.post(path, json=body) if "chat" in path else await c.get(path)
                assert answer.status_code == 200
            for _ in range(5):  # the tasks that end with a request (disconnect watchers) end
                await asyncio.sleep(0)
            gc.collect()
            kinds = {type(found).__name__ for found in gc.garbage}
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
    assert not kinds & {"Observation", "RequestContext"}, sorted(kinds)


def _recording_provider() -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    return provider
