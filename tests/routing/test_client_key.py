"""The client's akgate key stops at the gateway: providers see the identity, not the secret."""

from __future__ import annotations

from typing import Any

import httpx

from akgate import MemoryKeyStore, create_key, gateway, get_context
from akgate._asgi import read_body, send_json

COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "mine",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


class Recorder:
    """A chat-completions app that records the headers and identity it was called with."""

    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.key_id: str | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.headers = dict(scope["headers"])
        ctx = get_context(scope)
        self.key_id = ctx.identity.key_id if ctx and ctx.identity else None
        await read_body(scope, receive)
        await send_json(send, 200, COMPLETION)


async def call(app: Any, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.post(
            "/v1/chat/completions",
            json={"model": "mine", "messages": [{"role": "user", "content": "x"}]},
            headers=headers,
        )


async def test_wrapped_app_never_sees_the_client_key() -> None:
    store = MemoryKeyStore()
    new = await create_key(store, name="t")
    recorder = Recorder()
    app = gateway(recorder, keys=store, models=["mine"], demo=False)
    for header in ({"Authorization": f"Bearer {new.key}"}, {"x-api-key": new.key}):
        response = await call(app, {**header, "x-trace": "kept"})
        assert response.status_code == 200, response.text
        assert b"authorization" not in recorder.headers
        assert b"x-api-key" not in recorder.headers
        assert recorder.headers[b"x-trace"] == b"kept"
        assert recorder.key_id == new.record.key_id


async def test_without_the_auth_layer_the_app_keeps_its_own_authorization() -> None:
    recorder = Recorder()
    app = gateway(recorder, models=["mine"], demo=False, auth=False)
    response = await call(app, {"Authorization": "Bearer app-own-token"})
    assert response.status_code == 200
    assert recorder.headers[b"authorization"] == b"Bearer app-own-token"
