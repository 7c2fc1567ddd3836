"""langchain-openai with use_previous_response_id=True against the stack (in-process)."""

from __future__ import annotations

import json
from typing import Any

import httpx
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI

from tests.state.conftest import ChatEcho


async def test_use_previous_response_id_sends_only_new_messages(gw: Any, echo: ChatEcho) -> None:
    conn, a, _ = gw
    http = conn.http()
    sent: list[dict[str, Any]] = []

    async def record(request: httpx.Request) -> None:
        sent.append(json.loads(request.content))

    http.event_hooks["request"].append(record)
    model = ChatOpenAI(
        model="echo",
        base_url=str(http.base_url).rstrip("/") + "/v1",
        api_key=a.key,
        http_async_client=http,
        use_responses_api=True,
        use_previous_response_id=True,
        max_retries=0,
    )
    history: list[Any] = [HumanMessage("first question")]
    first = await model.ainvoke(history)
    assert first.text == "echo: first question"
    assert first.response_metadata["id"].startswith("resp_")
    history += [first, HumanMessage("second question")]
    second = await model.ainvoke(history)
    assert second.text == "echo: second question"
    assert sent[-1]["previous_response_id"] == first.response_metadata["id"]
    assert len(sent[-1]["input"]) == 1  # only the new message travels
    assert echo.requests[-1]["messages"] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "echo: first question"},
        {"role": "user", "content": "second question"},
    ]
