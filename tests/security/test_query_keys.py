"""A key sent in the query string never reaches the access log nor the upstream."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from akgate._query import scrub_query
from akgate._serve import ServeConfig, build_app
from akgate.auth import MemoryKeyStore
from akgate.auth._stores import new_key_record
from tests.support.servers import run_uvicorn

from .recording import Recorder

KEY = new_key_record(name="q")
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("query", "kept"),
    [
        (b"api_key=ak_live_abc&x=1", b"x=1"),
        (b"x=1&Api-Key=zz&y=2", b"x=1&y=2"),
        (b"key=whatever", b""),
        (b"access_token=t&api-version=2024-06-01", b"api-version=2024-06-01"),
        (b"anything=sk-proj-123", b""),
        (b"anything=ak_test_123", b""),
        (b"auth=Bearer%20abc", b""),
        (b"api-version=2024-06-01&limit=3", b"api-version=2024-06-01&limit=3"),
    ],
)
def test_scrub_query(query: bytes, kept: bytes) -> None:
    scope = {"query_string": query}
    scrub_query(scope)
    assert scope["query_string"] == kept


@pytest.fixture(scope="module")
def recorder_url() -> Iterator[tuple[Recorder, str]]:
    recorder = Recorder()
    with run_uvicorn(recorder) as base:
        yield recorder, base + "/v1"


@pytest.mark.server
def test_query_key_is_stripped_from_the_access_log_and_the_upstream(
    recorder_url: tuple[Recorder, str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder, url = recorder_url
    monkeypatch.setenv("OPENAI_API_KEY", "sk-operator")
    app = build_app(ServeConfig(upstream=url, models=("m",)), keys=MemoryKeyStore([KEY.record]))
    caplog.set_level(logging.INFO)
    # Earlier servers in this session may have configured uvicorn's loggers not to propagate.
    access_logger = logging.getLogger("uvicorn.access")
    access_logger.addHandler(caplog.handler)
    monkeypatch.setattr(access_logger, "propagate", False)
    secret = KEY.key
    with run_uvicorn(app, log_config=None, access_log=True, log_level="info") as base:
        start = recorder.count()
        response = httpx.post(
            f"{base}/v1/chat/completions?api_key={secret}&api-version=1",
            json=CHAT,
            headers={"authorization": f"Bearer {secret}"},
        )
        assert response.status_code == 200, response.text
        # A key only in the URL is not accepted either.
        refused = httpx.get(f"{base}/v1/models?key={secret}")
        assert refused.status_code == 401
    access_logger.removeHandler(caplog.handler)
    forwarded = recorder.since(start)
    assert [r["query"] for r in forwarded] == ["api-version=1"]
    access = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert len(access) == 3, access  # the gateway's two and the recorder's one
    assert all(secret not in line for line in access)
    assert sum("/v1/chat/completions?api-version=1 " in line for line in access) == 2
    # (The test's own httpx client logs the URL it was given: not the gateway's log.)
    assert all(secret not in r.getMessage() for r in caplog.records if r.name != "httpx")
    assert all(secret not in str(r) for r in forwarded)
