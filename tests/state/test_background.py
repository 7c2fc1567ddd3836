"""Background runs: create, poll, stream and resume, cancel, a dead worker's run."""

from __future__ import annotations

import time
from typing import Any

import anyio
import openai
import pytest
from httpx_sse import aconnect_sse

from akgate.store import MemoryResponseStore, StoredResponse
from tests.state.conftest import ChatEcho, keys, sdk, stack


async def poll(client: openai.AsyncOpenAI, response_id: str) -> Any:
    with anyio.fail_after(10):
        while True:
            response = await client.responses.retrieve(response_id)
            if response.status not in ("queued", "in_progress"):
                return response
            await anyio.sleep(0.02)


async def test_background_then_poll(gw: Any) -> None:
    app, a, _ = gw
    client = app.sdk(a)
    created = await client.responses.create(model="echo", input="later", background=True)
    assert created.status == "queued"
    assert created.background
    done = await poll(client, created.id)
    assert done.status == "completed"
    assert done.id == created.id
    assert done.output_text == "echo: later"
    follow = await client.responses.create(
        model="echo", input="next", previous_response_id=created.id
    )
    assert follow.output_text == "echo: next"


async def test_background_needs_store(gw: Any) -> None:
    app, a, _ = gw
    with pytest.raises(openai.BadRequestError) as info:
        await app.sdk(a).responses.create(model="echo", input="x", background=True, store=False)
    assert info.value.body["param"] == "background"  # type: ignore[index]


async def test_background_stream_and_resume(gw: Any) -> None:
    app, a, _ = gw
    client = app.sdk(a)
    stream = await client.responses.create(
        model="echo", input="a b c d", background=True, stream=True
    )
    events = [event async for event in stream]
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    response_id = events[-1].response.id
    assert {getattr(e, "response", None) and e.response.id for e in events} >= {response_id}
    numbers = [e.sequence_number for e in events]
    assert numbers == list(range(len(events)))

    # The SDK's resume helper: GET ?stream=true, filtering by starting_after client-side.
    async with client.responses.stream(response_id=response_id, starting_after=3) as resumed:
        rest = [event async for event in resumed]
    assert [e.sequence_number for e in rest] == numbers[4:]

    # The server honours starting_after too.
    http = app.http()
    async with aconnect_sse(
        http,
        "GET",
        f"/v1/responses/{response_id}",
        params={"stream": "true", "starting_after": str(numbers[-3])},
        headers={"Authorization": f"Bearer {a.key}"},
    ) as source:
        tail = [sse.event async for sse in source.aiter_sse()]
    assert tail == [events[-2].type, "response.completed"]


async def test_stream_of_a_non_streamed_run_is_400(gw: Any) -> None:
    app, a, _ = gw
    client = app.sdk(a)
    created = await client.responses.create(model="echo", input="x", background=True)
    await poll(client, created.id)
    http = app.http()
    answer = await http.get(
        f"/v1/responses/{created.id}?stream=true", headers={"Authorization": f"Bearer {a.key}"}
    )
    assert answer.status_code == 400


async def test_cancel_stops_the_run_and_is_sticky(gw: Any, echo: ChatEcho) -> None:
    app, a, _ = gw
    client = app.sdk(a)
    created = await client.responses.create(model="slow", input="x", background=True)
    await anyio.sleep(0.1)
    cancelled = await client.responses.cancel(created.id)
    assert cancelled.status == "cancelled"
    again = await client.responses.cancel(created.id)
    assert again.status == "cancelled"
    await anyio.sleep(0.1)
    assert (await client.responses.retrieve(created.id)).status == "cancelled"


async def test_dead_workers_run_reads_failed(echo: ChatEcho) -> None:
    store = MemoryResponseStore()
    a, _ = keys()
    app = stack(echo, store, a)
    now = time.time()
    # What a worker that died mid-run leaves behind: in_progress with a lapsed lease.
    await store.save(
        StoredResponse(
            id="resp_dead",
            workspace="ws_a",
            response={
                "id": "resp_dead",
                "object": "response",
                "status": "in_progress",
                "output": [],
                "created_at": int(now),
                "model": "echo",
            },
            created_at=now,
            expires_at=now + 100,
            background=True,
            lease_until=now - 1,
        )
    )
    response = await sdk(app, a).responses.retrieve("resp_dead")
    assert response.status == "failed"
    assert response.error is not None
    await app.aclose()


async def test_deleting_a_running_run_is_final(gw: Any) -> None:
    app, a, _ = gw
    client = app.sdk(a)
    created = await client.responses.create(model="slow", input="x", background=True)
    await anyio.sleep(0.1)
    await client.responses.delete(created.id)
    await anyio.sleep(0.3)  # the stopped run must not save its record back
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(created.id)
