"""The middleware shell: routing of paths, the inner call's scope and context, failures."""

from __future__ import annotations

import json
from typing import Any

import pytest

from akgate._asgi import dumps
from akgate._types import Message, Receive, Scope, Send
from akgate.adapter import ResponsesAdapter
from akgate.context import RequestContext, get_context

from .scripted import Seen, call, completion, json_app, stream_app, text_stream

REQ: dict[str, Any] = {"model": "m", "input": "hi"}


async def test_other_paths_pass_through() -> None:
    seen = Seen()
    result = await call(
        ResponsesAdapter(json_app({"ok": 1}, seen=seen)), {"x": 1}, path="/v1/chat/completions"
    )
    assert result.json == {"ok": 1}
    assert seen.json == {"x": 1}


async def test_passthrough_option_forwards_responses_untouched() -> None:
    seen = Seen()
    app = ResponsesAdapter(json_app({"native": True}, seen=seen), passthrough=True)
    result = await call(app, REQ)
    assert result.json == {"native": True}
    assert seen.scope is not None
    assert seen.scope["path"] == "/v1/responses"
    assert seen.json == REQ


async def test_lifespan_passes_through() -> None:
    seen: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def nothing() -> Message:
        return {}

    async def drop(message: Message) -> None:
        pass

    await ResponsesAdapter(inner)({"type": "lifespan"}, nothing, drop)
    assert seen == ["lifespan"]


async def test_get_on_responses_is_405() -> None:
    result = await call(ResponsesAdapter(json_app({})), b"", method="GET")
    assert result.status == 405
    assert result.headers[b"allow"] == b"POST"


async def test_inner_sees_a_chat_request_with_correct_scope() -> None:
    seen = Seen()
    app = ResponsesAdapter(json_app(completion({"content": "x"}), seen=seen))
    await call(
        app,
        REQ,
        headers=[
            (b"content-type", b"application/json"),
            (b"content-length", b"999"),
            (b"accept-encoding", b"gzip"),
        ],
        path="/api/v1/responses",
        scope_extra={"root_path": "/api"},
    )
    scope = seen.scope
    assert scope is not None
    assert scope["path"] == "/api/v1/chat/completions"
    assert scope["raw_path"] == b"/api/v1/chat/completions"
    assert scope["method"] == "POST"
    headers = dict(scope["headers"])
    assert headers[b"content-length"] == str(len(seen.body)).encode()
    assert headers[b"content-type"] == b"application/json"
    assert b"accept-encoding" not in headers
    assert seen.json["messages"] == [{"role": "user", "content": "hi"}]


async def test_inner_gets_a_child_context() -> None:
    seen = Seen()
    app = ResponsesAdapter(json_app(completion({"content": "x"}), seen=seen))
    await call(app, REQ)
    assert seen.scope is not None
    child = get_context(seen.scope)
    assert child is not None
    assert child.endpoint == "chat_completions"
    assert child.payload == seen.json
    assert child.body == seen.body


async def test_payload_from_an_outer_layer_is_used() -> None:
    seen = Seen()
    ctx = RequestContext(payload={"model": "m", "input": "from ctx"}, endpoint="responses")
    app = ResponsesAdapter(json_app(completion({"content": "x"}), seen=seen))
    result = await call(app, b"ignored", scope_extra={"akgate": ctx})
    assert result.status == 200
    assert seen.json["messages"][0]["content"] == "from ctx"
    assert ctx.payload == {"model": "m", "input": "from ctx"}  # parent untouched


async def test_invalid_json_is_400() -> None:
    result = await call(ResponsesAdapter(json_app({})), b"{nope")
    assert result.status == 400
    assert result.json["error"]["code"] == "invalid_request"


async def test_missing_input_is_400_missing_required_parameter() -> None:
    result = await call(ResponsesAdapter(json_app({})), {"model": "m"})
    assert result.status == 400
    assert result.json["error"]["code"] == "missing_required_parameter"
    assert result.json["error"]["param"] == "input"


async def test_wrong_type_is_400_with_param_path() -> None:
    body = {
        "model": "m",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": 3}]}],
    }
    result = await call(ResponsesAdapter(json_app({})), body)
    assert result.status == 400
    assert result.json["error"]["code"] == "invalid_parameter_value"
    assert result.json["error"]["param"] == "input[0].content[0].text"


async def test_body_over_cap_is_413() -> None:
    result = await call(ResponsesAdapter(json_app({}), max_body_size=10), REQ)
    assert result.status == 413


async def test_hosted_tool_is_400_naming_the_tool() -> None:
    body = {**REQ, "tools": [{"type": "web_search"}]}
    result = await call(ResponsesAdapter(json_app({})), body)
    assert result.status == 400
    assert result.json["error"]["code"] == "hosted_tool_not_supported"
    assert result.json["error"]["param"] == "tools[0]"


async def test_inner_exception_before_start_is_502_envelope() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    result = await call(ResponsesAdapter(broken), REQ)
    assert result.status == 502
    assert result.json["error"]["code"] == "upstream_error"


async def test_inner_returning_nothing_is_502() -> None:
    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        return

    result = await call(ResponsesAdapter(silent), REQ)
    assert result.status == 502


async def test_pathsend_extension_is_hidden_from_the_inner_app() -> None:
    seen = Seen()
    app = ResponsesAdapter(json_app(completion({"content": "x"}), seen=seen))
    await call(app, REQ, scope_extra={"extensions": {"http.response.pathsend": {}, "other": {}}})
    assert seen.scope is not None
    assert seen.scope["extensions"] == {"other": {}}


async def test_inner_pathsend_is_a_502() -> None:
    async def file_app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.pathsend", "path": "/etc/hostname"})

    result = await call(ResponsesAdapter(file_app), REQ)
    assert result.status == 502


async def test_debug_messages_are_forwarded() -> None:
    inner = json_app(completion({"content": "x"}))

    async def debug_app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.debug", "info": {}})
        await inner(scope, receive, send)

    result = await call(ResponsesAdapter(debug_app), REQ)
    assert result.messages[0]["type"] == "http.response.debug"


async def test_request_id_header_is_added() -> None:
    result = await call(ResponsesAdapter(json_app(completion({"content": "x"}))), REQ)
    assert result.headers[b"x-request-id"].startswith(b"req_")


async def test_gateway_and_extensions_pass_through_unchanged() -> None:
    seen = Seen()
    extra = {"gateway": {"models": ["a", "b"]}, "extensions": {"openai": {"x": 1}}}
    await call(
        ResponsesAdapter(json_app(completion({"content": "x"}), seen=seen)),
        {"input": "hi", **extra},
    )
    assert seen.json["gateway"] == extra["gateway"]
    assert seen.json["extensions"] == extra["extensions"]


async def test_gateway_keys_absent_stay_absent() -> None:
    seen = Seen()
    await call(ResponsesAdapter(json_app(completion({"content": "x"}), seen=seen)), REQ)
    assert "gateway" not in seen.json
    assert "extensions" not in seen.json


async def test_warning_for_dropped_reasoning_reaches_the_context() -> None:
    ctx = RequestContext()
    body = {
        **REQ,
        "input": [
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"role": "user", "content": "hi"},
        ],
    }
    await call(
        ResponsesAdapter(json_app(completion({"content": "x"}))), body, scope_extra={"akgate": ctx}
    )
    assert ctx.warnings[0]["code"] == "input[0]"


@pytest.mark.parametrize(
    "options",
    [
        {"reasoning_events": "both"},
        {"max_tokens_field": "tokens"},
        {"path": "v1"},
        {"developer_role": "user"},
        {"reasoning_input": "x"},
        {"max_body_size": 0},
    ],
)
def test_bad_options_raise_value_error(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ResponsesAdapter(json_app({}), **options)


async def test_works_under_add_middleware() -> None:
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def chat(request: Request) -> JSONResponse:
        payload = await request.json()
        return JSONResponse(completion({"content": payload["messages"][-1]["content"]}))

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    app.add_middleware(ResponsesAdapter)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        response = await client.post("/v1/responses", json={"model": "m", "input": "echo"})
    assert response.json()["output_text"] == "echo"


async def test_stream_json_dumps_is_compact() -> None:
    # The chat body the inner app reads is the adapter's compact JSON (no stale length).
    seen = Seen()
    await call(ResponsesAdapter(stream_app(text_stream("x"), seen=seen)), {**REQ, "stream": True})
    assert seen.body == dumps(json.loads(seen.body))
