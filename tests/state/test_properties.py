"""Property: any chain of turns replays, through previous_response_id, to exactly the chat
history a client would have built by hand from the same responses; and reasoning replays."""

from __future__ import annotations

from typing import Any

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

from akgate.store import MemoryResponseStore
from tests.state.conftest import ChatEcho, keys, sdk, stack

TOOL = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}
texts = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=20
)
turns = st.lists(
    st.tuples(
        st.sampled_from(["text", "tool"]), st.lists(texts, min_size=1, max_size=3), st.booleans()
    ),
    min_size=1,
    max_size=5,
)


def by_hand(output: list[Any]) -> list[dict[str, Any]]:
    """The chat messages a client writes for a response's output items."""
    messages: list[dict[str, Any]] = []
    for item in output:
        if item.type == "message":
            messages.append({"role": "assistant", "content": item.content[0].text})
        elif item.type == "function_call":
            call = {
                "id": item.call_id,
                "type": "function",
                "function": {"name": item.name, "arguments": item.arguments},
            }
            if messages and messages[-1].get("tool_calls"):
                messages[-1]["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    return messages


async def run_chain(plan: list[tuple[str, list[str], bool]]) -> None:
    echo = ChatEcho()
    a, _ = keys()
    app = stack(echo, MemoryResponseStore(), a)
    client = sdk(app, a)
    expected: list[dict[str, Any]] = []
    previous: str | None = None
    pending_call: str | None = None
    for kind, words, streamed in plan:
        items: list[dict[str, Any]] = []
        if pending_call is not None:
            items.append(
                {"type": "function_call_output", "call_id": pending_call, "output": words[0]}
            )
            expected.append({"role": "tool", "tool_call_id": pending_call, "content": words[0]})
            pending_call = None
        else:
            for word in words:
                items.append({"role": "user", "content": word})
                expected.append({"role": "user", "content": word})
        options: dict[str, Any] = {"model": "echo", "input": items}
        if kind == "tool":
            options["tools"] = [TOOL]
        if previous is not None:
            options["previous_response_id"] = previous
        if streamed:
            async with client.responses.stream(**options) as stream:
                response = await stream.get_final_response()
        else:
            response = await client.responses.create(**options)
        assert echo.requests[-1]["messages"] == expected
        expected += by_hand(response.output)
        calls = [i for i in response.output if i.type == "function_call"]
        pending_call = calls[0].call_id if calls else None
        previous = response.id
    await app.aclose()


@settings(max_examples=20)
@given(plan=turns)
def test_a_chain_replays_to_the_hand_built_history(plan: list[Any]) -> None:
    anyio.run(run_chain, plan)


async def test_replayed_reasoning_reaches_the_app_as_reasoning_content() -> None:
    echo = ChatEcho()
    a, _ = keys()
    app = stack(
        echo, MemoryResponseStore(), a, adapter_options={"reasoning_input": "reasoning_content"}
    )
    client = sdk(app, a)
    first = await client.responses.create(model="reasoner", input="why")
    assert first.output[0].type == "reasoning"
    await client.responses.create(model="reasoner", input="and", previous_response_id=first.id)
    assistant = echo.requests[-1]["messages"][1]
    assert assistant == {
        "role": "assistant",
        "content": "echo: why",
        "reasoning_content": "thinking about echo: why",
    }
    # The AI SDK's form: a reasoning reference and a message reference, then new input.
    await client.responses.create(
        model="reasoner",
        input=[
            {"role": "user", "content": "why"},
            {"type": "item_reference", "id": first.output[0].id},
            {"type": "item_reference", "id": first.output[1].id},
            {"role": "user", "content": "and"},
        ],
    )
    assert echo.requests[-1]["messages"][1] == assistant
    await app.aclose()
