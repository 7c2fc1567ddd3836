"""Regression suite for issue 10's access-control findings: one canonical path, a closed
upstream boundary, public means GET of exactly the public paths.

The stack is ``akgate serve --upstream`` (``build_app``) in front of a real recording upstream
on 127.0.0.1. Requests go in with exact paths (``call_raw``: HTTP clients would normalize the
'..' away, as ``curl --path-as-is`` does not); a few go over a real uvicorn with raw sockets too.
The invariants: no request reaches the upstream without a valid key, no key reaches an endpoint
its scopes or model allowlist forbid, and nothing but the served endpoints ever leaves.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import anyio
import anyio.from_thread
import pytest
from hypothesis import given
from hypothesis import strategies as st

from akgate._serve import ServeConfig, build_app
from akgate.auth import MemoryKeyStore
from akgate.auth._stores import new_key_record
from akgate.providers import UpstreamProvider
from tests.support.raw import RawResponse, call_raw
from tests.support.servers import run_uvicorn

from .recording import Recorder

OPERATOR_KEY = "sk-operator-secret"
ALLOWED, OTHER = "m-allowed", "m-other"


KEYS = {
    "full": new_key_record(name="full"),
    "restricted": new_key_record(name="restricted", scopes=["chat"], allowed_models=[ALLOWED]),
    "test": new_key_record(name="test", environment="test"),
}


class Stack:
    def __init__(self, app: Any, recorder: Recorder, portal: Any) -> None:
        self.app = app
        self.recorder = recorder
        self.portal = portal

    def send(
        self,
        method: str,
        path: str,
        key: str | None,
        body: bytes = b"",
        query: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
    ) -> tuple[RawResponse, list[dict[str, Any]]]:
        """One request; returns the answer and what reached the upstream because of it."""
        all_headers = list(headers or [])
        if key is not None:
            all_headers.append(("authorization", f"Bearer {key}"))
        if body:
            all_headers.append(("content-type", "application/json"))
        start = self.recorder.count()
        response = self.portal.call(
            lambda: call_raw(self.app, method, path, headers=all_headers, body=body, query=query)
        )
        return response, self.recorder.since(start)


@pytest.fixture(scope="module")
def recorder_url() -> Iterator[tuple[Recorder, str]]:
    recorder = Recorder()
    with run_uvicorn(recorder) as base:
        yield recorder, base + "/v1"


@pytest.fixture(scope="module")
def stack(recorder_url: tuple[Recorder, str]) -> Iterator[Stack]:
    recorder, url = recorder_url
    store = MemoryKeyStore([k.record for k in KEYS.values()])
    mp = pytest.MonkeyPatch()
    mp.setenv("OPENAI_API_KEY", OPERATOR_KEY)
    try:
        app = build_app(ServeConfig(upstream=url, models=(ALLOWED, OTHER)), keys=store)
    finally:
        mp.undo()
    with anyio.from_thread.start_blocking_portal() as portal:
        yield Stack(app, recorder, portal)
        portal.call(upstream_provider(app).aclose)


def upstream_provider(app: Any) -> UpstreamProvider:
    while not isinstance(app, UpstreamProvider):
        app = app.app
    return app


def chat(model: str = ALLOWED) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()


def responses(model: str = ALLOWED) -> bytes:
    return json.dumps({"model": model, "input": "hi"}).encode()


def messages(model: str = ALLOWED) -> bytes:
    body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    return json.dumps(body).encode()


def assert_envelope(response: RawResponse, status: int, code: str | None = None) -> None:
    assert response.status == status, response.body
    error = response.json()["error"]
    if code is not None:
        assert error["code"] == code
    assert response.headers.get("x-request-id")


# --- finding 1: auth bypass by path traversal (critical) ----------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/registry/../files", b""),
        ("POST", "/v1/registry/../chat/completions", chat()),
        ("DELETE", "/v1/directory/../files/file-123", b""),
        ("GET", "/v1/registry/%2e%2e/batches", b""),
        ("GET", "/v1/registry/%2E%2E/files", b""),
        ("GET", "/v1/registry/..%2ffiles", b""),
        ("POST", "/v1/directory/..;/chat/completions", chat()),
        ("GET", "/v1/registry/%252e%252e/files", b""),
        ("POST", "/v1/registry//../chat/completions", chat()),
        ("GET", "/v1/registry/models/../../files", b""),
        ("POST", "/v1/registry/models/..", chat()),
    ],
)
def test_traversal_from_public_paths_never_reaches_the_upstream(
    stack: Stack, method: str, path: str, body: bytes
) -> None:
    response, upstream = stack.send(method, path, None, body)
    assert upstream == []
    assert response.status in (401, 404), response.body
    assert_envelope(response, response.status)


@pytest.mark.parametrize("body", [b"", chat()])
def test_options_without_a_key_is_not_forwarded(stack: Stack, body: bytes) -> None:
    response, upstream = stack.send("OPTIONS", "/v1/chat/completions", None, body)
    assert upstream == []
    assert response.status in (404, 405)


@pytest.mark.parametrize("path", ["/v1/directory/models", "/v1/registry/models"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_public_paths_are_public_only_for_get(stack: Stack, path: str, method: str) -> None:
    response, upstream = stack.send(method, path, None, chat())
    assert upstream == []
    assert_envelope(response, 401, "invalid_api_key")


@pytest.mark.parametrize(
    "path", ["/v1/registry/models/x", "/v1/directory/files", "/v1/registry/", "/v1/registry"]
)
def test_only_the_exact_public_paths_are_public(stack: Stack, path: str) -> None:
    response, upstream = stack.send("GET", path, None)
    assert upstream == []
    assert response.status in (401, 404), response.body


def test_public_get_never_reaches_the_upstream(stack: Stack) -> None:
    # Routing answers the public directory from the catalog: nothing goes upstream.
    response, upstream = stack.send("GET", "/v1/registry/models", None)
    assert upstream == []
    assert response.status == 200, response.body
    assert b'"models"' in response.body


# --- finding 2: allowlist and scopes bypassed by path variants (high) ----------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", chat(OTHER)),
        ("/v1/chat/completions/", chat(OTHER)),
        ("/v1/responses/", responses(OTHER)),
        ("/v1/./chat/completions", chat(OTHER)),
        ("/v1/chat/completions;", chat(OTHER)),
        ("/v1/chat/completions;x=1", chat(OTHER)),
        ("/v1//chat/completions", chat(OTHER)),
        ("/v1/chat//completions", chat(OTHER)),
        ("/v1/chat/./completions/", chat(OTHER)),
        ("/V1/chat/completions", chat(OTHER)),
        ("/v1/Chat/Completions", chat(OTHER)),
        ("/v1/chat%2Fcompletions", chat(OTHER)),
        ("/v1/chat/completions%2F", chat(OTHER)),
        ("/v1/chat/completions/.", chat(OTHER)),
        ("/v1/x/../chat/completions", chat(OTHER)),
        ("/v1/chat/completions\\", chat(OTHER)),
        ("/v1/messages", messages(OTHER)),
        ("/v1/messages/", messages(OTHER)),
        ("/v1/./messages", messages(OTHER)),
        ("/v1/messages/count_tokens/", messages(OTHER)),
    ],
)
def test_path_variants_never_skip_the_model_allowlist(stack: Stack, path: str, body: bytes) -> None:
    response, upstream = stack.send("POST", path, KEYS["restricted"].key, body)
    assert upstream == []
    assert response.status in (403, 404), response.body


def test_the_allowed_model_goes_through_with_routing_metadata(stack: Stack) -> None:
    for path in ("/v1/chat/completions", "/v1/chat/completions/"):
        response, upstream = stack.send("POST", path, KEYS["restricted"].key, chat())
        assert response.status == 200, response.body
        assert response.json()["routing_metadata"]["provider"] == "upstream"
        assert [(u["method"], u["path"]) for u in upstream] == [("POST", "/v1/chat/completions")]
        assert upstream[0]["authorization"] == f"Bearer {OPERATOR_KEY}"


def test_a_restricted_scope_never_reaches_responses(stack: Stack) -> None:
    response, upstream = stack.send("POST", "/v1/responses", KEYS["restricted"].key, responses())
    assert upstream == []
    assert_envelope(response, 403, "insufficient_permissions")


# --- finding 3: any key reaches the whole upstream API (high) ------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/files"),
        ("POST", "/v1/files"),
        ("GET", "/v1/organization/users"),
        ("POST", "/v1/embeddings"),
        ("POST", "/v1/batches"),
        ("DELETE", "/v1/files/file-123"),
        ("GET", "/v1/fine_tuning/jobs"),
        ("POST", "/v1/audio/speech"),
        ("GET", "/v1"),
        ("GET", "/v1/me/../files"),
    ],
)
@pytest.mark.parametrize("key", ["test", "full"])
def test_any_key_reaches_only_the_served_endpoints(
    stack: Stack, method: str, path: str, key: str
) -> None:
    response, upstream = stack.send(method, path, KEYS[key].key, chat())
    assert upstream == []
    assert response.status in (404, 405), response.body


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_wrong_methods_on_served_endpoints_are_405(stack: Stack, method: str) -> None:
    response, upstream = stack.send(method, "/v1/chat/completions", KEYS["full"].key, chat())
    assert upstream == []
    assert_envelope(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


def test_messages_reach_the_upstream_only_as_chat_completions(stack: Stack) -> None:
    for path in ("/v1/messages", "/v1/messages/"):
        response, upstream = stack.send("POST", path, KEYS["full"].key, messages())
        assert response.status == 200, response.body
        assert [(u["method"], u["path"]) for u in upstream] == [("POST", "/v1/chat/completions")]


def test_a_test_key_chats_through_the_upstream(stack: Stack) -> None:
    response, upstream = stack.send("POST", "/v1/chat/completions", KEYS["test"].key, chat())
    assert response.status == 200, response.body
    assert len(upstream) == 1


# --- generated: paths, encodings, methods -------------------------------------------------

SEGMENTS = [
    "v1",
    "V1",
    "chat",
    "completions",
    "responses",
    "messages",
    "count_tokens",
    "models",
    "registry",
    "directory",
    "files",
    "embeddings",
    "me",
    "..",
    ".",
    "",
    "%2e%2e",
    "%2E",
    "%2f",
    "%2F",
    "%252e",
    "..;",
    ";x=1",
    "chat;",
    "%5c",
    "%00",
    "Chat",
    "%3F",
    "%23",
]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]


@st.composite
def gateway_paths(draw: st.DrawFn) -> str:
    head = draw(st.sampled_from(["/v1/", "/", "/v1/registry/", "/v1/directory/", "//v1/"]))
    segments = draw(st.lists(st.sampled_from(SEGMENTS), max_size=5))
    tail = draw(st.sampled_from(["", "/", ";", "/."]))
    return head + "/".join(segments) + tail


@given(
    method=st.sampled_from(METHODS),
    path=gateway_paths(),
    key=st.sampled_from([None, "invalid", "restricted", "test", "full"]),
    model=st.sampled_from([ALLOWED, OTHER]),
    endpoint_body=st.sampled_from(["chat", "responses", "messages"]),
)
def test_generated_requests_keep_the_boundary(
    stack: Stack, method: str, path: str, key: str | None, model: str, endpoint_body: str
) -> None:
    body = {"chat": chat, "responses": responses, "messages": messages}[endpoint_body](model)
    secret = None
    if key == "invalid":
        secret = "ak_live_" + "A" * 46
    elif key is not None:
        secret = KEYS[key].key
    response, upstream = stack.send(method, path, secret, body if method != "HEAD" else b"")
    assert response.status < 500, (method, path, response.body)
    if key in (None, "invalid"):
        assert upstream == [], (method, path)
    for request in upstream:
        # Only the served endpoint leaves, with the operator's key, for a POST.
        assert (request["method"], request["path"]) == ("POST", "/v1/chat/completions")
        assert request["authorization"] == f"Bearer {OPERATOR_KEY}"
        if key == "restricted":
            assert request["model"] == ALLOWED
            assert endpoint_body == "chat"


# --- over a real server: the curl --path-as-is requests ---------------------------


def _raw_http(base: str, request: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk


@pytest.mark.server
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/registry/../files", b""),
        ("POST", "/v1/registry/../chat/completions", chat()),
        ("DELETE", "/v1/directory/../files/file-123", b""),
        ("GET", "/v1/registry/%2e%2e/batches", b""),
        ("OPTIONS", "/v1/chat/completions", chat()),
        ("POST", "/v1/./chat/completions", chat()),
    ],
)
def test_real_server_requests_without_a_key_never_reach_the_upstream(
    recorder_url: tuple[Recorder, str], method: str, path: str, body: bytes
) -> None:
    recorder, url = recorder_url
    store = MemoryKeyStore([k.record for k in KEYS.values()])
    mp = pytest.MonkeyPatch()
    mp.setenv("OPENAI_API_KEY", OPERATOR_KEY)
    try:
        app = build_app(ServeConfig(upstream=url, models=(ALLOWED, OTHER)), keys=store)
    finally:
        mp.undo()
    with run_uvicorn(app) as base:
        start = recorder.count()
        request = (
            f"{method} {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        answer = _raw_http(base, request)
        assert recorder.since(start) == []
    status = int(answer.split(b" ", 2)[1])
    assert status in (401, 404, 405), answer
    assert OPERATOR_KEY.encode() not in answer
