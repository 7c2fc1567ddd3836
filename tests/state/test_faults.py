"""A store that is down: 503 + Retry-After where the store is needed, store:false unaffected,
and an answer whose save fails still goes out (reported as not stored)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from akgate.store import RedisResponseStore, SQLiteResponseStore
from tests.state.conftest import ChatEcho, keys, sdk, stack


async def check_store_down(app: Any, key: Any, caplog: pytest.LogCaptureFixture) -> None:
    client = sdk(app, key)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    auth = {"Authorization": f"Bearer {key.key}"}
    # store:false needs no store.
    assert (await client.responses.create(model="echo", input="x", store=False)).output_text
    # Requests that read the store: 503 with Retry-After, never 401/500.
    for request in (
        http.post(
            "/v1/responses",
            headers=auth,
            json={"model": "echo", "input": "x", "previous_response_id": "resp_1"},
        ),
        http.post(
            "/v1/responses",
            headers=auth,
            json={"model": "echo", "input": [{"type": "item_reference", "id": "msg_1"}]},
        ),
        http.post(
            "/v1/responses", headers=auth, json={"model": "echo", "input": "x", "background": True}
        ),
        http.get("/v1/responses/resp_1", headers=auth),
        http.delete("/v1/responses/resp_1", headers=auth),
        http.get("/v1/responses/resp_1/input_items", headers=auth),
        http.post("/v1/responses/resp_1/cancel", headers=auth),
    ):
        answer = await request
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "1"
        assert answer.json()["error"]["code"] == "service_unavailable"
    # A stored turn whose save fails after the answer: the answer goes out, marked unstored.
    with caplog.at_level(logging.WARNING, logger="akgate.store"):
        response = await client.responses.create(model="echo", input="y")
    assert response.output_text == "echo: y"
    assert response.model_extra is not None
    assert response.model_extra["store"] is False
    warnings = response.model_extra["routing_metadata"]["warnings"]
    assert any(w["code"] == "response_not_stored" for w in warnings)
    assert "was not stored" in caplog.text
    async with client.responses.stream(model="echo", input="z") as stream:
        final = await stream.get_final_response()
    assert final.output_text == "echo: z"
    assert final.model_extra is not None
    assert final.model_extra["store"] is False


async def test_redis_down(redis_server_private: Any, caplog: pytest.LogCaptureFixture) -> None:
    a, _ = keys()
    store = RedisResponseStore(redis_server_private.url)
    app = stack(ChatEcho(), store, a)
    redis_server_private.stop()
    await check_store_down(app, a, caplog)
    await store.aclose()


async def test_sqlite_file_unreadable(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "responses.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    a, _ = keys()
    store = SQLiteResponseStore(path)
    await check_store_down(stack(ChatEcho(), store, a), a, caplog)
    await store.aclose()


async def test_an_oversized_response_is_answered_but_not_stored(echo: ChatEcho) -> None:
    from akgate.store import MemoryResponseStore

    a, _ = keys()
    app = stack(echo, MemoryResponseStore(max_record_size=200), a)
    response = await sdk(app, a).responses.create(model="echo", input="x" * 500)
    assert response.output_text == "echo: " + "x" * 500
    assert response.model_extra is not None
    assert response.model_extra["store"] is False
    with pytest.raises(openai.NotFoundError):
        await sdk(app, a).responses.retrieve(response.id)
