"""examples/fastapi_app.py, run as the guide does: a key created in the SQLite store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from starlette.testclient import TestClient

from akgate.auth import SQLiteKeyStore, create_key


@pytest.fixture
async def sqlite_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AKGATE_HOME", str(tmp_path))
    monkeypatch.delenv("AKGATE_API_KEYS", raising=False)
    store = SQLiteKeyStore()  # what `akgate keys create` writes to
    new = await create_key(store, name="me")
    await store.aclose()
    return new.key


def test_fastapi_example_serves_responses_with_a_sqlite_key(
    sqlite_key: str, load: Callable[[str], ModuleType]
) -> None:
    module = load("examples.fastapi_app")
    headers = {"authorization": f"Bearer {sqlite_key}"}
    with TestClient(module.app) as client:
        response = client.post(
            "/v1/responses", json={"model": "echo", "input": "Hello"}, headers=headers
        )
        streamed = client.post(
            "/v1/responses",
            headers=headers,
            json={"model": "echo", "input": "Hello", "stream": True},
        )
        whoami = client.get("/v1/whoami", headers=headers)
        home = client.get("/")
        with client.websocket_connect("/ws") as ws:
            ws.send_text("ping")
            echoed = ws.receive_text()
    assert response.json()["output"][0]["content"][0]["text"] == "You said: Hello"
    assert "event: response.completed" in streamed.text
    assert whoami.json()["key_id"] == sqlite_key[:16]
    assert home.json() == {"hello": "world"}
    assert echoed == "ping"
    assert module.EVENTS == ["startup", "whoami-task", "shutdown"]
