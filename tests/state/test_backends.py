"""One behaviour suite for every response store backend (memory, SQLite, a real redis-server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from akgate.store import (
    MemoryResponseStore,
    RedisResponseStore,
    ResponseStore,
    ResponseStoreUnavailable,
    ResponseTooLarge,
    SQLiteResponseStore,
    StoredResponse,
    open_response_store,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store_and_clock(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[ResponseStore, Clock]]:
    clock = Clock()
    store: ResponseStore
    if request.param == "memory":
        store = MemoryResponseStore(clock=clock, max_record_size=4096)
    elif request.param == "sqlite":
        store = SQLiteResponseStore(tmp_path / "r.sqlite3", clock=clock, max_record_size=4096)
    else:
        server = request.getfixturevalue("redis_server")
        server.flush()
        store = RedisResponseStore(server.url, clock=clock, max_record_size=4096)
    yield store, clock
    await store.aclose()


def record(rid: str, workspace: str = "ws", *, expires: float, **extra: Any) -> StoredResponse:
    return StoredResponse(
        id=rid,
        workspace=workspace,
        response={
            "id": rid,
            "object": "response",
            "status": "completed",
            "output": [
                {
                    "id": f"msg_{rid}",
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "hi"}],
                }
            ],
        },
        input_items=[{"id": f"in_{rid}", "type": "message", "role": "user", "content": "q"}],
        created_at=expires - 100,
        expires_at=expires,
        **extra,
    )


async def test_save_load_and_workspace_scoping(store_and_clock: Any) -> None:
    store, clock = store_and_clock
    rec = record("resp_1", chain=["resp_0"], expires=clock.now + 100)
    await store.save(rec)
    loaded = await store.load("ws", "resp_1")
    assert loaded == rec
    assert await store.load("other", "resp_1") is None
    assert await store.load("ws", "resp_unknown") is None
    assert await store.load_many("ws", ["resp_x", "resp_1"]) == [None, rec]
    assert await store.load_many("other", ["resp_1"]) == [None]


async def test_items_are_indexed_per_workspace(store_and_clock: Any) -> None:
    store, clock = store_and_clock
    await store.save(record("resp_1", expires=clock.now + 100))
    found = await store.find_items("ws", ["msg_resp_1", "in_resp_1", "msg_nope"])
    assert set(found) == {"msg_resp_1", "in_resp_1"}
    assert found["msg_resp_1"]["role"] == "assistant"
    assert await store.find_items("other", ["msg_resp_1"]) == {}


async def test_replacing_a_record_updates_it(store_and_clock: Any) -> None:
    store, clock = store_and_clock
    rec = record("resp_1", expires=clock.now + 100, background=True, lease_until=5.0)
    rec.response["status"] = "in_progress"
    await store.save(rec)
    rec.response["status"] = "completed"
    rec.lease_until = None
    await store.save(rec)
    loaded = await store.load("ws", "resp_1")
    assert loaded is not None
    assert loaded.response["status"] == "completed"
    assert loaded.background
    assert loaded.lease_until is None


async def test_expired_records_and_items_read_as_not_found(store_and_clock: Any) -> None:
    store, clock = store_and_clock
    await store.save(record("resp_1", expires=clock.now + 10))
    clock.now += 11
    assert await store.load("ws", "resp_1") is None
    assert await store.find_items("ws", ["msg_resp_1"]) == {}
    await store.prune()
    assert await store.load("ws", "resp_1") is None


async def test_delete_removes_record_items_and_events(store_and_clock: Any) -> None:
    store, clock = store_and_clock
    await store.save(record("resp_1", expires=clock.now + 100))
    await store.append_events("resp_1", [(0, b"event: a\n\n")])
    assert not await store.delete("other", "resp_1")
    assert await store.load("ws", "resp_1") is not None
    assert await store.delete("ws", "resp_1")
    assert await store.load("ws", "resp_1") is None
    assert await store.find_items("ws", ["msg_resp_1"]) == {}
    assert await store.events_after("resp_1", -1) == []
    assert not await store.delete("ws", "resp_1")


async def test_event_log_in_order_after_a_sequence_number(store_and_clock: Any) -> None:
    store, clock = store_and_clock
    await store.save(record("resp_1", expires=clock.now + 100))
    await store.append_events("resp_1", [(0, b"e0"), (1, b"e1\nx")])
    await store.append_events("resp_1", [(2, b"e2")])
    assert await store.events_after("resp_1", -1) == [(0, b"e0"), (1, b"e1\nx"), (2, b"e2")]
    assert await store.events_after("resp_1", 1) == [(2, b"e2")]
    assert await store.events_after("resp_2", -1) == []


async def test_cancel_flag(store_and_clock: Any) -> None:
    store, _ = store_and_clock
    assert not await store.cancel_requested("resp_1")
    await store.request_cancel("resp_1")
    await store.request_cancel("resp_1")
    assert await store.cancel_requested("resp_1")


async def test_size_bound(store_and_clock: Any) -> None:
    store, clock = store_and_clock
    rec = record("resp_big", expires=clock.now + 100)
    rec.response["output"][0]["content"][0]["text"] = "x" * 5000
    with pytest.raises(ResponseTooLarge):
        await store.save(rec)
    assert await store.load("ws", "resp_big") is None


async def test_sqlite_prune_deletes_expired_rows(tmp_path: Path) -> None:
    clock = Clock()
    store = SQLiteResponseStore(tmp_path / "r.sqlite3", clock=clock)
    await store.save(record("resp_old", expires=clock.now + 10))
    await store.save(record("resp_new", expires=clock.now + 1000))
    clock.now += 11
    assert await store.prune() == 1
    assert await store.prune() == 0
    assert await store.load("ws", "resp_new") is not None
    await store.aclose()


async def test_sqlite_unreadable_file_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    path.write_bytes(b"not a database" * 100)
    store = SQLiteResponseStore(path)
    with pytest.raises(ResponseStoreUnavailable):
        await store.load("ws", "resp_1")
    await store.aclose()


async def test_redis_down_is_unavailable(redis_server_private: Any) -> None:
    store = RedisResponseStore(redis_server_private.url)
    redis_server_private.stop()
    with pytest.raises(ResponseStoreUnavailable):
        await store.load("ws", "resp_1")
    with pytest.raises(ResponseStoreUnavailable):
        await store.save(record("resp_1", expires=9e9))
    await store.aclose()


def test_open_response_store_urls(tmp_path: Path) -> None:
    assert isinstance(open_response_store("memory://"), MemoryResponseStore)
    sqlite = open_response_store(f"sqlite:///{tmp_path}/x.sqlite3")
    assert isinstance(sqlite, SQLiteResponseStore)
    assert sqlite.path == tmp_path / "x.sqlite3"
    redis = open_response_store("redis://127.0.0.1:1/0", ttl=60)
    assert isinstance(redis, RedisResponseStore)
    assert redis.ttl == 60
    with pytest.raises(ValueError, match="unknown"):
        open_response_store("ftp://x")
    with pytest.raises(ValueError, match="looks like"):
        open_response_store("/tmp/x")
