"""The Conversations API and the conversation parameter, through the openai SDK."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.state.conftest import ChatEcho


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
