"""Fixtures for end-to-end tests: the served stack over a real uvicorn, and its key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from akgate._serve import ServeConfig, build_app
from akgate.auth import MemoryKeyStore, ensure_demo_key
from tests.support.servers import run_uvicorn


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AKGATE_HOME", str(tmp_path))
    monkeypatch.delenv("AKGATE_API_KEYS", raising=False)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, str]]:
    """``akgate serve``'s stack (no token delay) over a real uvicorn: ``(base URL, key)``."""
    store = MemoryKeyStore()
    key = anyio.run(ensure_demo_key, store)
    assert key is not None
    # log_config=None: uvicorn's loggers propagate to the root logger, so caplog sees them.
    with run_uvicorn(build_app(ServeConfig(token_delay_ms=0), keys=store), log_config=None) as base:
        yield base, key


@pytest.fixture
def http(served: tuple[str, str]) -> Iterator[httpx.Client]:
    base, key = served
    with httpx.Client(
        base_url=base, headers={"authorization": f"Bearer {key}"}, timeout=20
    ) as client:
        yield client


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the Auriko error envelope with ``status`` and ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("x-request-id")
    error = response.json()["error"]
    assert error["code"] == code
    assert set(error) >= {"message", "type", "code", "param", "doc_url"}
    assert "Traceback" not in error["message"]
    return error  # type: ignore[no-any-return]
