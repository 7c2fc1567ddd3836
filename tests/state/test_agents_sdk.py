"""openai-agents chaining turns with previous_response_id against the stack (in-process)."""

from __future__ import annotations

from typing import Any

from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

from tests.state.conftest import ChatEcho

set_tracing_disabled(True)  # no calls to OpenAI's trace exporter


@function_tool
def lookup(q: int) -> str:
    """Look something up."""
    return f"found {q}"


async def test_runner_chains_with_previous_response_id(gw: Any, echo: ChatEcho) -> None:
    app, a, _ = gw
    model = OpenAIResponsesModel(model="echo", openai_client=app.sdk(a))
    agent = Agent(name="helper", instructions="be brief", model=model, tools=[lookup])
    # A tool loop inside one run, chained automatically on the latest response id.
    first = await Runner.run(agent, "please look", auto_previous_response_id=True)
    assert first.final_output == "done: found 1"
    assert echo.requests[-1]["messages"][-1] == {
        "role": "tool",
        "tool_call_id": echo.requests[-1]["messages"][-2]["tool_calls"][0]["id"],
        "content": "found 1",
    }
    # The next run sends only its new input and names the last response.
    plain = Agent(name="helper", instructions="be brief", model=model)
    second = await Runner.run(plain, "and now", previous_response_id=first.last_response_id)
    assert second.final_output == "echo: and now"
    history = echo.requests[-1]["messages"]
    assert [m["role"] for m in history] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
