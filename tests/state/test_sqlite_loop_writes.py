"""The SQLite store's writes from the event loop: each turn is committed (readable by any
worker) when its save returns; the first turn of a pass of the loop is written at once and the
turns saved after it in that pass share one transaction; turns saved while a checkpoint is
queued wait for it in memory (one transaction for all of them) instead of taking a thread hop
each; a store that fails reports every such turn as not stored."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import openai
import pytest

from akgate.store import SQLiteResponseStore
from akgate.store import _sqlite as sqlite_store
from tests.state.conftest import ChatEcho, keys, sdk, stack
from tests.state.test_backends import record


def count_commits(conn: sqlite3.Connection | None) -> list[str]:
    assert conn is not None
    commits: list[str] = []
    conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    return commits


def count_hops(store: SQLiteResponseStore) -> list[Any]:
    """The calls handed to the store's thread."""
    calls: list[Any] = []
    submit = store._submit

    def counted(func: Any, reply: Any) -> None:
        calls.append(func)
        submit(func, reply)

    store._submit = counted  # type: ignore[method-assign]
    return calls


async def test_concurrent_turns_are_readable_by_another_worker_once_saved(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.sqlite3"
    store = SQLiteResponseStore(path)
    await store.save(record("resp_first", expires=9e9))  # opens the loop's connection
    hops = count_hops(store)
    commits = count_commits(store._loop_conn)
    ids = [f"resp_{i}" for i in range(8)]
    await asyncio.gather(*(store.save(record(rid, expires=9e9)) for rid in ids))
    assert hops == []
    assert commits == ["COMMIT", "COMMIT"]  # the first at once, the seven others together
    more = [f"resp_more_{i}" for i in range(8)]
    await asyncio.gather(*(store.save(record(rid, expires=9e9)) for rid in more))
    assert commits == ["COMMIT"] * 3  # after a pass that saved several: all eight together
    ids += more
    other = SQLiteResponseStore(path)  # another worker's store on the same file
    loaded = await other.load_many("ws", ids)
    assert [r.id if r else None for r in loaded] == ids
    items = await other.find_items("ws", ["in_resp_3", "msg_resp_7"])
    assert set(items) == {"in_resp_3", "msg_resp_7"}  # written with their records
    await other.aclose()
    await store.aclose()


async def test_a_lone_turn_is_committed_without_waiting_for_a_pass(tmp_path: Path) -> None:
    store = SQLiteResponseStore(tmp_path / "r.sqlite3")
    await store.save(record("resp_first", expires=9e9))
    await asyncio.gather(*(store.save(record(f"resp_{i}", expires=9e9)) for i in range(4)))
    for i in range(3):  # passes that save one turn each end the group commits
        await store.save(record(f"resp_one_{i}", expires=9e9))
        await asyncio.sleep(0)
    commits = count_commits(store._loop_conn)
    save = store.save(record("resp_lone", expires=9e9))
    with pytest.raises(StopIteration):
        save.send(None)  # completes in one step: never suspended
    assert commits == ["COMMIT"]
    await asyncio.sleep(0)
    await store.aclose()


async def test_turns_saved_during_a_checkpoint_wait_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader holding its snapshot keeps the checkpoint waiting; the turns saved meanwhile
    take no thread hop, the loop keeps running, and they are committed (and readable) once
    the checkpoint is done."""
    monkeypatch.setattr(sqlite_store, "_CHECKPOINT_EVERY", 4)
    path = tmp_path / "r.sqlite3"
    store = SQLiteResponseStore(path)
    await store.save(record("resp_0", expires=9e9))
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM responses").fetchall()  # holds its snapshot
    for i in (1, 2, 3):  # the fourth turn queues the checkpoint
        await store.save(record(f"resp_{i}", expires=9e9))
    assert store._checkpointing
    hops = count_hops(store)
    commits = count_commits(store._loop_conn)
    saves = [asyncio.ensure_future(store.save(record(f"resp_w{i}", expires=9e9))) for i in range(6)]
    for _ in range(5):
        await asyncio.sleep(0.01)  # the loop runs on
    assert not any(task.done() for task in saves)
    reader.execute("COMMIT")
    reader.close()
    await asyncio.wait_for(asyncio.gather(*saves), 10)
    # None of them went to the store's thread (ten turns since: the next checkpoint did),
    # and they were written together.
    assert hops == [sqlite_store._checkpoint]
    assert commits == ["COMMIT"]
    loaded = await store.load_many("ws", [f"resp_w{i}" for i in range(6)])
    assert all(r is not None for r in loaded)
    await store.aclose()


async def test_turns_in_flight_are_written_before_the_store_closes(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    store = SQLiteResponseStore(path)
    await store.save(record("resp_first", expires=9e9))
    saves = [asyncio.ensure_future(store.save(record(f"resp_{i}", expires=9e9))) for i in range(5)]
    await asyncio.sleep(0)  # each has joined the batch
    await store.aclose()
    await asyncio.gather(*saves)
    assert store._opened == []  # closed for good: no connection reopened behind aclose
    reopened = SQLiteResponseStore(path)
    loaded = await reopened.load_many("ws", [f"resp_{i}" for i in range(5)])
    assert all(r is not None for r in loaded)
    await reopened.aclose()


async def test_concurrent_turns_chain_at_once_on_another_worker(tmp_path: Path) -> None:
    """Read-after-write through the SDK: turns created together on one stack are continued,
    right after, with ``previous_response_id`` on a second stack over the same file."""
    path = tmp_path / "responses.sqlite3"
    a, _ = keys()
    one = SQLiteResponseStore(path)
    two = SQLiteResponseStore(path)
    first, second = sdk(stack(ChatEcho(), one, a), a), sdk(stack(ChatEcho(), two, a), a)

    async def turn(i: int) -> None:
        created = await first.responses.create(model="echo", input=f"hi {i}")
        assert created.model_extra is not None
        assert created.model_extra["store"] is True
        chained = await second.responses.create(
            model="echo", input=f"again {i}", previous_response_id=created.id
        )
        assert chained.previous_response_id == created.id
        replay = await second.responses.input_items.list(chained.id)
        assert [item.id for item in replay.data]  # its own input is stored too

    async with first, second:
        await asyncio.gather(*(turn(i) for i in range(8)))
        streamed = [first.responses.stream(model="echo", input=f"s {i}") for i in range(4)]
        finals = []
        for manager in streamed:
            async with manager as stream:
                finals.append(await stream.get_final_response())
        again = await asyncio.gather(*(second.responses.retrieve(final.id) for final in finals))
        assert [r.output_text for r in again] == [f.output_text for f in finals]
    await one.aclose()
    await two.aclose()


async def test_a_locked_store_reports_every_turn_of_a_batch_as_not_stored(
    tmp_path: Path,
) -> None:
    """Another worker holds the write lock past the store's timeout: each answer goes out,
    marked not stored, and chaining on it is a 404, never a 500; once the lock is free the
    next turns are stored."""
    path = tmp_path / "responses.sqlite3"
    a, _ = keys()
    store = SQLiteResponseStore(path, timeout=0.2)
    client = sdk(stack(ChatEcho(), store, a), a)
    async with client:
        await client.responses.create(model="echo", input="warm")  # file and connections
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        answers = await asyncio.gather(
            *(client.responses.create(model="echo", input=f"x {i}") for i in range(4))
        )
        for i, answer in enumerate(answers):
            assert answer.output_text == f"echo: x {i}"
            assert answer.model_extra is not None
            assert answer.model_extra["store"] is False
            warnings = answer.model_extra["routing_metadata"]["warnings"]
            assert any(w["code"] == "response_not_stored" for w in warnings)
        other.execute("COMMIT")
        other.close()
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(answers[0].id)
        stored = await client.responses.create(model="echo", input="y")
        chained = await client.responses.create(
            model="echo", input="z", previous_response_id=stored.id
        )
        assert chained.previous_response_id == stored.id
    await store.aclose()
