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
