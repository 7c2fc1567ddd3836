"""The Conversations API and the conversation parameter, through the openai SDK."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from tests.state.conftest import ChatEcho, keys, sdk, stack


async def test_conversation_lifecycle(gw: Any, echo: ChatEcho) -> None:
    conn, a, b = gw
    client = conn.sdk(a)
    conversation = await client.conversations.create(
        items=[{"type": "message", "role": "user", "content": "remember 7"}],
        metadata={"topic": "numbers"},
    )
    assert conversation.id.startswith("conv_")
    first = await client.responses.create(
        model="echo", input="what number?", conversation=conversation.id
    )
    assert first.to_dict()["conversation"] == {"id": conversation.id}
    assert echo.requests[-1]["messages"] == [
        {"role": "user", "content": "remember 7"},
        {"role": "user", "content": "what number?"},
    ]
    # The turn's input and output were appended: the next turn sees them.
    async with client.responses.stream(
        model="echo", input="and now?", conversation={"id": conversation.id}
    ) as stream:
        await stream.get_final_response()
    texts = [m["content"] for m in echo.requests[-1]["messages"]]
    assert texts[1:] == ["what number?", "echo: what number?", "and now?"]

    items = [item async for item in client.conversations.items.list(conversation.id, order="asc")]
    assert [i.type for i in items] == ["message"] * 5
    one = await client.conversations.items.retrieve(items[1].id, conversation_id=conversation.id)
    assert one.id == items[1].id
    await client.conversations.items.delete(items[1].id, conversation_id=conversation.id)
    left = await client.conversations.items.list(conversation.id, order="asc")
    assert len(left.data) == 4

    added = await client.conversations.items.create(
        conversation.id, items=[{"type": "message", "role": "user", "content": "extra"}]
    )
    assert len(added.data) == 1
    updated = await client.conversations.update(conversation.id, metadata={"topic": "changed"})
    assert updated.metadata == {"topic": "changed"}

    other = conn.sdk(b)
    with pytest.raises(openai.NotFoundError):
        await other.conversations.retrieve(conversation.id)
    with pytest.raises(openai.NotFoundError):
        await other.responses.create(model="echo", input="x", conversation=conversation.id)

    deleted = await client.conversations.delete(conversation.id)
    assert deleted.deleted
    with pytest.raises(openai.NotFoundError):
        await client.conversations.retrieve(conversation.id)


async def test_conversation_and_previous_response_id_together_is_400(gw: Any) -> None:
    conn, a, _ = gw
    client = conn.sdk(a)
    conversation = await client.conversations.create()
    first = await client.responses.create(model="echo", input="x")
    with pytest.raises(openai.BadRequestError):
        await client.responses.create(
            model="echo",
            input="y",
            conversation=conversation.id,
            previous_response_id=first.id,
        )


async def test_a_conversation_id_is_not_a_response_id(gw: Any) -> None:
    conn, a, _ = gw
    client = conn.sdk(a)
    conversation = await client.conversations.create()
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(conversation.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.delete(conversation.id)
    with pytest.raises(openai.BadRequestError):
        await client.responses.create(model="echo", input="x", previous_response_id=conversation.id)
    assert (await client.conversations.retrieve(conversation.id)).id == conversation.id


@pytest.fixture(params=["memory", "sqlite", "redis"])
def two_stores(request: pytest.FixtureRequest, tmp_path: Any) -> tuple[Any, Any]:
    """Two store objects on the same data: two connections to one SQLite file, two clients of
    one redis-server (as two workers have); memory can only share one object."""
    from akgate.store import MemoryResponseStore, RedisResponseStore, SQLiteResponseStore

    if request.param == "memory":
        store = MemoryResponseStore()
        return store, store
    if request.param == "sqlite":
        path = tmp_path / "r.sqlite3"
        return SQLiteResponseStore(path), SQLiteResponseStore(path)
    server = request.getfixturevalue("redis_server")
    server.flush()
    return RedisResponseStore(server.url), RedisResponseStore(server.url)


async def test_concurrent_appends_from_two_workers_are_all_kept_in_one_order(
    two_stores: tuple[Any, Any], echo: ChatEcho
) -> None:
    key, _ = keys()
    first, second = (stack(echo, store, key) for store in two_stores)
    clients = [sdk(first, key), sdk(second, key)]
    conversation = await clients[0].conversations.create()
    per_client, size = 15, 3

    async def append(client: openai.AsyncOpenAI, tag: str) -> None:
        block = [
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": f"{tag}.{i}"}],
            }
            for i in range(size)
        ]
        await client.conversations.items.create(conversation.id, items=block)  # type: ignore[arg-type]

    await asyncio.gather(
        *(append(client, f"{n}-{k}") for k in range(per_client) for n, client in enumerate(clients))
    )
    seen = []
    for client in clients:
        page = await client.conversations.items.list(conversation.id, order="asc", limit=100)
        seen.append([item.content[0].text for item in page.data])  # type: ignore[union-attr]
    assert seen[0] == seen[1]  # both workers read one order
    texts = seen[0]
    assert len(texts) == 2 * per_client * size  # no append lost
    # Each append is one contiguous block, in its own order.
    blocks = [texts[i : i + size] for i in range(0, len(texts), size)]
    for block in blocks:
        tag = block[0].rsplit(".", 1)[0]
        assert block == [f"{tag}.{i}" for i in range(size)]
    assert sorted(b[0] for b in blocks) == sorted(
        f"{n}-{k}.0" for n in range(2) for k in range(per_client)
    )
    for client in clients:
        await client.close()
    for store in {id(s): s for s in two_stores}.values():
        await store.aclose()
