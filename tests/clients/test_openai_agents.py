"""The openai-agents SDK with a namespace of tools and a custom tool, over the served stack.

The agent's Responses requests carry a ``namespace`` tool (``tool_namespace``) and a ``custom``
tool (``CustomTool``); the gateway flattens both for the chat-only demo model and maps the calls
back, so the SDK runs its own Python functions and the loop ends with the demo's final answer.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

agents = pytest.importorskip("agents", reason="openai-agents is an optional test dependency")

from agents import (  # noqa: E402
    Agent,
    CustomTool,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
    tool_namespace,
)
from openai import AsyncOpenAI  # noqa: E402

from akgate import gateway  # noqa: E402
from akgate.providers import DemoModel  # noqa: E402
from akgate.routing import Catalog  # noqa: E402


@pytest.fixture(autouse=True)
def _no_tracing() -> None:
    set_tracing_disabled(True)  # traces would be exported to OpenAI's platform


def model() -> OpenAIResponsesModel:
    app = gateway(DemoModel(), auth=False, catalog=Catalog.demo(), app_provider="demo")
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    client = AsyncOpenAI(base_url="http://t/v1", api_key="unused", http_client=http)
    return OpenAIResponsesModel(model="demo", openai_client=client)


@function_tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"sunny in {city}"


@function_tool
def get_time(city: str) -> str:
    """Local time in a city."""
    return f"noon in {city}"


async def test_a_namespaced_tool_runs_and_the_agent_finishes() -> None:
    agent = Agent(
        name="helper",
        model=model(),
        tools=tool_namespace(
            name="city", description="Facts about a city.", tools=[get_weather, get_time]
        ),
    )
    result = await Runner.run(agent, "Use get_weather for Oslo.")
    calls = [item.raw_item for item in result.new_items if item.type == "tool_call_item"]
    assert [(getattr(c, "name", None), getattr(c, "namespace", None)) for c in calls] == [
        ("get_weather", "city")
    ]
    assert result.final_output == "The tool results are in. get_weather returned: sunny in Oslo"


async def test_a_custom_tool_gets_its_raw_input() -> None:
    seen: list[str] = []

    def apply_patch(_context: Any, text: str) -> str:
        seen.append(text)
        return "patched"

    patch = CustomTool(
        name="apply_patch",
        description="Apply a patch to the workspace.",
        on_invoke_tool=apply_patch,
        format={"type": "grammar", "syntax": "lark", "definition": 'start: "*** Begin Patch"'},
    )
    agent = Agent(name="coder", model=model(), tools=[patch])
    result = await Runner.run(agent, 'Use the apply_patch tool with "*** Begin Patch".')
    assert seen == ["*** Begin Patch"]
    assert result.final_output == "The tool results are in. apply_patch returned: patched"
