"""A response that starts before its body is read lifts ``RequestBodyTimeout``'s bound.

The start is seen by the request context's own ``send`` wrapper when the layer creates the
context (no wrapper of its own), and by a wrapper of its own when an outer layer made the
context: both must lift the bound, on every event loop.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from akgate import RequestBodyTimeout
from akgate._types import Message, Receive, Scope, Send
from akgate.context import get_context, request_context
from tests.security.test_body_timeout_loops import SCOPE


async def never_completes() -> Message:
    await anyio.sleep_forever()
    raise AssertionError


async def answers_first(scope: Scope, receive: Receive, send: Send) -> None:
    """Starts its (streamed) answer without reading the body, and outlasts the bound."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await anyio.sleep(0.3)
    await send({"type": "http.response.body", "body": b"ok"})


def outer_context(app: Any) -> Any:
    """A layer outside that creates the request context first (as a user's own layer may)."""

    async def layer(scope: Scope, receive: Receive, send: Send) -> None:
        scope, send, _ = request_context(scope, send)
        await app(scope, receive, send)

    return layer


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("context_made_outside", [False, True])
def test_a_started_response_is_not_cut_by_the_body_bound(
    backend: str, context_made_outside: bool
) -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(get_context(scope))
        await answers_first(scope, receive, send)

    layer: Any = RequestBodyTimeout(app, timeout=0.1)
    if context_made_outside:
        layer = outer_context(layer)
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def main() -> None:
        with anyio.fail_after(5):
            await layer(dict(SCOPE), never_completes, send)

    anyio.run(main, backend=backend)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b"ok"
    # One X-Request-ID, from whichever layer made the context.
    assert [h for h in sent[0]["headers"] if h[0] == b"x-request-id"] == [
        (b"x-request-id", seen[0].request_id.encode())
    ]
