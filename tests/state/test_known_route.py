"""The stateful and spend layers read the path's resolution an outer layer left on the request
context (gateway_scope's cache) instead of resolving it again: with it and without it (each
layer alone, the first to see the request), every request gets the same answer, and the same
ledger record."""

from __future__ import annotations

import re
from typing import Any

import pytest

from akgate._endpoints import ENDPOINTS, gateway_scope
from akgate.context import open_context
from akgate.store import StatefulResponses
from akgate.usage import SpendControl, UsageLedger
from akgate.usage._ledger import MemoryLedgerBackend

_PATHS = [
    *sorted({s.path for s in ENDPOINTS if "{" not in s.path}),
    "/v1/responses/resp_1",
    "/v1/chat/completions/",
    "/v1/Chat/completions",
    "/v1/unknown",
    "/elsewhere",
]
_LAYOUTS = [
    {},
    {"path": "/v1/chat/completions"},  # a layer told to serve responses on another row's path
    {"conversations_path": "/v1/models"},
]


async def app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": f"app {scope['path']}".encode()})


async def _serve(layer: Any, method: str, path: str, known: bool) -> list[Any]:
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
    }
    # What the outermost layer of gateway() leaves: the context, the path resolved (and a
    # trailing slash rewritten) on it; or the same without the resolution.
    scope, ctx = open_context(scope)
    scope, _ = gateway_scope(scope, ctx)
    if not known:
        ctx.route = None
    await layer(scope, receive, send)
    ids = re.compile(rb"(req|conv)_[0-9a-f]{24,32}")
    for message in sent:
        if message["type"] == "http.response.start":
            message["headers"] = sorted(
                (n, ids.sub(b"req", v)) for n, v in message["headers"] if n != b"x-request-id"
            )
        else:
            message["body"] = ids.sub(b"req", message.get("body", b""))
    return sent


@pytest.mark.parametrize("options", _LAYOUTS)
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
@pytest.mark.parametrize("path", _PATHS)
async def test_the_stateful_layer_answers_a_known_route_as_any(
    path: str, method: str, options: dict[str, str]
) -> None:
    layer = StatefulResponses(app, store="memory://", **options)
    assert await _serve(layer, method, path, True) == await _serve(layer, method, path, False)


def test_a_chat_request_is_foreign_to_the_stateful_layer_unless_its_path_is_the_layers() -> None:
    assert "chat_completions" in StatefulResponses(app, store="memory://")._foreign_endpoints
    custom = StatefulResponses(app, store="memory://", path="/v1/chat/completions")
    assert "chat_completions" not in custom._foreign_endpoints
    assert "responses" in custom._foreign_endpoints


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", _PATHS)
async def test_the_spend_layer_records_a_known_route_as_any(path: str, method: str) -> None:
    rows = []
    for known in (True, False):
        backend = MemoryLedgerBackend()
        ledger = UsageLedger(backend)
        layer = SpendControl(app, ledger=ledger, clock=lambda: 1.0)
        sent = await _serve(layer, method, path, known)
        ledger.flush_sync()
        ledger.close()
        rows.append(
            (sent, [(r.endpoint, r.status, r.error_code, r.model) for r in backend.records])
        )
    assert rows[0] == rows[1]
    billed = {"/v1/chat/completions", "/v1/chat/completions/", "/v1/responses", "/v1/messages"}
    assert len(rows[0][1]) == (1 if method == "POST" and path in billed else 0)
