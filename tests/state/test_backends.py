"""One behaviour suite for every response store backend (memory, SQLite, a real redis-server)."""

from __future__ import annotations

import asyncio
import sqlite3
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


async def test_update_reads_changes_and_writes_one_record(store_and_clock: Any) -> None:
    store, clock = store_and_clock
    assert await store.update("ws", "resp_1", lambda r: True) is None  # nothing to change
    await store.save(record("resp_1", expires=clock.now + 100))
    assert await store.update("other", "resp_1", lambda r: True) is None  # another workspace

    def add(changed: StoredResponse) -> bool:
        changed.input_items.append(
            {"id": "in_2", "type": "message", "role": "user", "content": "r"}
        )
        changed.input_items[0]["content"] = "edited"  # an item edited in place is rewritten
        return True

    updated = await store.update("ws", "resp_1", add)
    assert updated is not None
    assert [i["id"] for i in updated.input_items] == ["in_resp_1", "in_2"]
    assert await store.load("ws", "resp_1") == updated
    found = await store.find_items("ws", ["in_2", "in_resp_1"])
    assert found["in_2"]["content"] == "r"
    assert found["in_resp_1"]["content"] == "edited"

    def drop_first(changed: StoredResponse) -> bool:
        del changed.input_items[0]
        return True

    await store.update("ws", "resp_1", drop_first)
    assert set(await store.find_items("ws", ["in_2", "in_resp_1"])) == {"in_2"}

    def refuse(changed: StoredResponse) -> bool:
        changed.input_items.clear()
        return False  # not written

    unchanged = await store.update("ws", "resp_1", refuse)
    assert unchanged is not None
    loaded = await store.load("ws", "resp_1")
    assert loaded is not None
    assert [i["id"] for i in loaded.input_items] == ["in_2"]

    def grow(changed: StoredResponse) -> bool:
        changed.input_items.append({"id": "big", "type": "message", "content": "x" * 5000})
        return True

    with pytest.raises(ResponseTooLarge):
        await store.update("ws", "resp_1", grow)
    clock.now += 101
    assert await store.update("ws", "resp_1", lambda r: True) is None  # expired


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


async def test_sqlite_calls_from_a_plain_thread(tmp_path: Path) -> None:
    """Off asyncio (trio), a pool thread hands the call to the store's thread and waits."""
    store = SQLiteResponseStore(tmp_path / "r.sqlite3")
    await store.save(record("resp_1", expires=9e9))

    def count(conn: Any) -> int:
        return int(conn.execute("SELECT count(*) FROM responses").fetchone()[0])

    assert await asyncio.to_thread(store._run_and_wait, count) == 1
    await store.aclose()


async def test_sqlite_a_busy_database_never_blocks_the_event_loop(tmp_path: Path) -> None:
    """Another worker holds the write lock: saves wait in the store's thread (the loop keeps
    running), complete when the lock is released, and a cancelled caller does not undo its
    queued write; ``aclose`` returns once everything queued before it is written."""
    path = tmp_path / "r.sqlite3"
    store = SQLiteResponseStore(path)
    await store.save(record("resp_first", expires=9e9))  # the file and its connections exist
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another worker's write transaction
    saves = [asyncio.ensure_future(store.save(record(f"resp_{i}", expires=9e9))) for i in range(20)]
    ticks = 0
    for _ in range(10):
        await asyncio.sleep(0.01)
        ticks += 1
    assert ticks == 10
    assert not any(task.done() for task in saves)  # waiting for the lock, off the loop
    for task in saves[10:]:
        task.cancel()
    other.execute("COMMIT")
    other.close()
    await asyncio.gather(*saves[:10])
    await store.aclose()
    reopened = SQLiteResponseStore(path)
    loaded = await reopened.load_many("ws", [f"resp_{i}" for i in range(20)])
    assert all(r is not None for r in loaded)
    await reopened.aclose()


async def test_sqlite_a_broken_loop_connection_falls_back_to_the_thread(tmp_path: Path) -> None:
    store = SQLiteResponseStore(tmp_path / "r.sqlite3")
    await store.save(record("resp_1", expires=9e9))
    broken = store._loop_conn
    assert broken is not None
    broken.close()  # any error but a busy database: the call goes to the thread, which answers
    await store.save(record("resp_2", expires=9e9))
    assert await store.load("ws", "resp_2") is not None  # and a new loop connection reads it
    assert store._loop_conn is not None
    assert store._loop_conn is not broken
    await store.aclose()


def test_stored_ids_grow_with_time() -> None:
    from akgate.store._history import new_stored_id

    ids = [new_stored_id("resp_") for _ in range(50)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 50
    assert all(len(i) == len("resp_") + 32 for i in ids)


async def test_sqlite_checkpoints_keep_the_log_bounded(tmp_path: Path) -> None:
    """Turns stored from the event loop do not checkpoint there: the store's thread does."""
    path = tmp_path / "r.sqlite3"
    store = SQLiteResponseStore(path)
    for i in range(1200):
        await store.save(record(f"resp_{i}", expires=9e9))
    await store.find_items("ws", ["x"])
    await store._run(lambda conn: None)  # the queued checkpoints have run
    one_turn = path.with_name("r.sqlite3-wal").stat().st_size
    assert 0 < one_turn < 1200 * 3 * 4096  # without checkpoints: every page of every turn
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
