"""previous_response_id chains, item references and retrieval through the openai SDK."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.state.conftest import ChatEcho


async def test_three_turn_chain_streamed_then_json(gw: Any, echo: ChatEcho) -> None:
    app, a, _ = gw
    client = app.sdk(a)
    async with client.responses.stream(
        model="echo", input="one", instructions="be brief"
    ) as stream:
        events = [event async for event in stream]
        first = await stream.get_final_response()
    created = next(e for e in events if e.type == "response.created")
    completed = next(e for e in events if e.type == "response.completed")
    assert created.response.id == completed.response.id == first.id
    assert first.output_text == "echo: one"

    second = await client.responses.create(model="echo", input="two", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    third = await client.responses.create(
        model="echo",
        input=[{"role": "user", "content": "three"}],
        previous_response_id=second.id,
        instructions="new rules",
    )
    assert third.output_text == "echo: three"
    history = echo.requests[-1]["messages"]
    assert history == [
        {"role": "system", "content": "new rules"},  # earlier instructions are not inherited
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "echo: one"},
        {"role": "user", "content": "two"},
        {"role": "assistant", "content": "echo: two"},
        {"role": "user", "content": "three"},
    ]
    stored = await client.responses.retrieve(third.id)
    assert stored.id == third.id
    assert stored.output_text == "echo: three"
    assert stored.previous_response_id == second.id
    assert stored.to_dict()["routing_metadata"]["provider"] == "app"  # stored as answered


async def test_unknown_previous_response_is_400(gw: Any) -> None:
    app, a, _ = gw
    client = app.sdk(a)
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model="echo", input="x", previous_response_id="resp_nope")
    error = info.value.body
    assert isinstance(error, dict)
    assert error["code"] == "previous_response_not_found"
    assert error["param"] == "previous_response_id"


async def test_store_false_persists_nothing(gw: Any) -> None:
    app, a, _ = gw
    client = app.sdk(a)
    response = await client.responses.create(model="echo", input="x", store=False)
    assert response.model_extra is not None
    assert response.model_extra["store"] is False
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(response.id)
    with pytest.raises(openai.BadRequestError):
        await client.responses.create(model="echo", input="y", previous_response_id=response.id)


async def test_other_workspace_sees_nothing(gw: Any) -> None:
    app, a, b = gw
    mine, theirs = app.sdk(a), app.sdk(b)
    response = await mine.responses.create(model="echo", input="secret")
    item_id = response.output[0].id
    with pytest.raises(openai.NotFoundError) as info:
        await theirs.responses.retrieve(response.id)
    assert "secret" not in str(info.value.body)
    with pytest.raises(openai.NotFoundError):
        await theirs.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        await theirs.responses.input_items.list(response.id)
    foreign = await _error_of(theirs, response.id)
    unknown = await _error_of(theirs, "resp_" + "0" * 32)
    assert foreign == unknown  # no hint that it exists
    with pytest.raises(openai.NotFoundError):
        await theirs.responses.create(
            model="echo", input=[{"type": "item_reference", "id": item_id}]
        )
    assert (await mine.responses.retrieve(response.id)).output_text == "echo: secret"


async def _error_of(client: openai.AsyncOpenAI, previous: str) -> Any:
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(model="echo", input="x", previous_response_id=previous)
    body = info.value.body
    assert isinstance(body, dict)
    return {**body, "message": body["message"].replace(previous, "ID")}


async def test_item_references_resolve_stored_items(gw: Any, echo: ChatEcho) -> None:
    app, a, _ = gw
    client = app.sdk(a)
    first = await client.responses.create(model="echo", input="hello")
    items = await client.responses.input_items.list(first.id)
    user_id = items.data[0].id
    reply_id = first.output[0].id
    await client.responses.create(
        model="echo",
        input=[
            {"type": "item_reference", "id": user_id},
            {"id": reply_id},  # the bare form
            {"role": "user", "content": "again"},
        ],
    )
    assert echo.requests[-1]["messages"] == [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "echo: hello"},
        {"role": "user", "content": "again"},
    ]


async def test_delete_then_not_found(gw: Any) -> None:
    app, a, _ = gw
    client = app.sdk(a)
    response = await client.responses.create(model="echo", input="x")
    assert await client.responses.delete(response.id) is None
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(response.id)
    with pytest.raises(openai.BadRequestError):
        await client.responses.create(model="echo", input="y", previous_response_id=response.id)


async def test_input_items_cursor_pages(gw: Any) -> None:
    app, a, _ = gw
    client = app.sdk(a)
    response = await client.responses.create(
        model="echo", input=[{"role": "user", "content": f"m{i}"} for i in range(5)]
    )
    page = await client.responses.input_items.list(response.id, limit=2, order="asc")
    assert page.has_more
    ids = [
        item.id
        async for item in client.responses.input_items.list(response.id, limit=2, order="asc")
    ]
    assert len(ids) == len(set(ids)) == 5
    desc = [item.id async for item in client.responses.input_items.list(response.id)]
    assert desc == ids[::-1]


async def test_cancel_of_a_foreground_response_is_400(gw: Any) -> None:
    app, a, _ = gw
    client = app.sdk(a)
    response = await client.responses.create(model="echo", input="x")
    with pytest.raises(openai.BadRequestError):
        await client.responses.cancel(response.id)


async def test_errors_name_the_clients_own_input_index(gw: Any) -> None:
    conn, a, _ = gw
    client = conn.sdk(a)
    first = await client.responses.create(model="echo", input="one")
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(
            model="echo",
            previous_response_id=first.id,
            input=[{"role": "user", "content": "ok"}, {"type": "no_such_item"}],
        )
    body = info.value.body
    assert isinstance(body, dict)
    assert body["param"] == "input[1].type"  # not its index in the expanded input
