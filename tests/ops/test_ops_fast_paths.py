"""The operations layers' cheap paths give what the plain rules give: the access log's record
and cached timestamps, and the no-SDK tracing check."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from akgate.ops import AccessLog
from akgate.ops._stack import _UTCFormatter
from akgate.ops._tracing import _untraced_check
from tests.ops.strategies import starts


def record(message: str, created: float | None = None) -> logging.LogRecord:
    entry = logging.LogRecord("akgate.access", logging.INFO, __file__, 1, message, None, None)
    if created is not None:
        entry.created = created
    return entry


@given(created=st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_cached_timestamps_are_those_of_a_plain_utc_formatter(created: float) -> None:
    utc = "%Y-%m-%dT%H:%M:%SZ"
    plain = logging.Formatter("%(asctime)s %(message)s", datefmt=utc)
    plain.converter = time.gmtime
    cached = _UTCFormatter("%(asctime)s %(message)s", datefmt=utc)
    for stamp in (created, created + 0.5, created + 1):  # a cached second and the next
        assert cached.format(record("x", stamp)) == plain.format(record("x", stamp))


@pytest.mark.parametrize("installed", [None, "sdk", "no-op"])
def test_the_untraced_check_agrees_with_the_api(
    installed: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_PYTHON_TRACER_PROVIDER", raising=False)
    check = _untraced_check(None)  # made before the provider is set: it is read per call
    provider = {None: None, "sdk": TracerProvider(), "no-op": trace.NoOpTracerProvider()}
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider[installed])
    no_ops = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
    assert check() is isinstance(trace.get_tracer_provider(), no_ops)
    assert check() is (installed != "sdk")


def test_a_provider_named_in_the_environment_is_asked_from_the_api(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_PYTHON_TRACER_PROVIDER", "sdk_tracer_provider")
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    calls: list[int] = []

    def provider() -> trace.TracerProvider:
        calls.append(1)
        return trace.NoOpTracerProvider()

    monkeypatch.setattr(trace, "get_tracer_provider", provider)
    check = _untraced_check(None)
    assert check() is True
    assert calls == [1]  # the API's own look-up, which loads the named provider


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def _answer(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _one_request(app: Any) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    scope = {"type": "http", "method": "GET", "path": "/x", "headers": [], "query_string": b""}
    await app(scope, receive, send)


async def test_the_access_record_is_the_one_logger_info_would_make() -> None:
    logger = logging.getLogger("akgate.test.access.fast")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    collect = Collect()
    logger.addHandler(collect)
    try:
        await _one_request(AccessLog(_answer, logger=logger))
        (entry,) = collect.records
        assert entry.levelno == logging.INFO
        assert entry.name == logger.name
        assert entry.funcName == "_log"
        assert entry.pathname.endswith("_accesslog.py")
        assert entry.getMessage().split(" ")[1:4] == ["GET", "/x", "204"]
        assert entry.request_id == entry.akgate["request_id"]  # type: ignore[attr-defined]
        logger.disabled = True  # what logger.info() honours, so does the layer
        await _one_request(AccessLog(_answer, logger=logger))
        assert len(collect.records) == 1
    finally:
        logger.removeHandler(collect)
        logger.disabled = False


_bodies = st.lists(
    st.fixed_dictionaries(
        {"type": st.just("http.response.body"), "body": st.binary(max_size=40)},
        optional={"more_body": st.booleans()},
    ),
    max_size=3,
)


@given(start=starts, bodies=_bodies, request_id=st.sampled_from([None, b"req_from_client"]))
async def test_one_wrapper_sends_and_observes_what_the_two_do(
    start: dict[str, Any], bodies: list[dict[str, Any]], request_id: bytes | None
) -> None:
    """The outermost operations layer's one wrapper (observed_request) against the rule it
    skips: request_context's X-Request-ID wrapper, then the observation's wrapper of it. The
    server gets the same messages, the observation notes the same answer, the context has the
    same id."""
    from akgate.context import request_context
    from akgate.ops._observe import observe, observed_request

    headers = [(b"x-request-id", request_id)] if request_id else []
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": headers}
    results = []
    for fused in (True, False):
        got: list[dict[str, Any]] = []

        async def server(message: Any, got: list[dict[str, Any]] = got) -> None:
            got.append(message)

        if fused:
            inner_scope, send, ctx, obs = observed_request(scope, server)
        else:
            inner_scope, send, ctx = request_context(scope, server)
            obs, send = observe(inner_scope, send, ctx)
        for message in [start, *bodies]:
            await send(dict(message))
        obs.finish()
        assert inner_scope["akgate"] is ctx
        assert inner_scope is not scope
        rid = ctx.request_id if request_id else "generated"
        sent = [
            [(n, rid.encode() if v == ctx.request_id.encode() else v) for n, v in m["headers"]]
            if m["type"] == "http.response.start"
            else m
            for m in got
        ]
        results.append((sent, obs.status, obs.stream, obs.error_code, rid))
    assert results[0] == results[1]
