"""The canonical-path rule and the endpoint table, layer by layer (akgate._endpoints)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akgate import APIKeyAuth, RequestValidation, ResponsesAdapter, Routing
from akgate._endpoints import ENDPOINTS, EndpointSpec, canonical_path, resolve
from akgate._types import Receive, Scope, Send
from akgate.auth import MemoryKeyStore
from akgate.auth._stores import new_key_record
from akgate.context import get_context
from akgate.providers import UpstreamProvider
from tests.support.raw import call_raw

CHAT = json.dumps({"model": "demo", "messages": [{"role": "user", "content": "hi"}]}).encode()


def res(path: str, raw: bytes | None = None) -> Any:
    return resolve({"raw_path": path.encode() if raw is None else raw}, path)


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("/v1/a/../b", "/v1/b"),
        ("/v1/./a/", "/v1/a"),
        ("//v1//a", "/v1/a"),
        ("/v1/a;x=1/b;", "/v1/a/b"),
        ("/../../v1", "/v1"),
        ("/", "/"),
    ],
)
def test_canonical_path(path: str, canonical: str) -> None:
    assert canonical_path(path) == canonical


def test_canonical_paths_resolve_to_their_row() -> None:
    assert res("/v1/chat/completions").spec.name == "chat_completions"
    found = res("/v1/models/org/model-1.5")
    assert (found.spec.name, dict(found.params)) == ("models.retrieve", {"model": "org/model-1.5"})
    assert res("/v1/whoami").spec is None  # an app's own route
    assert res("/health") is None  # not the gateway's


def test_only_a_trailing_slash_is_rewritten() -> None:
    found = res("/v1/responses/")
    assert (found.path, found.rewrite, found.refused) == ("/v1/responses", True, False)
    for path in ("/v1/responses//", "/v1/responses/.", "/v1/responses;/", "/V1/responses/"):
        assert res(path).refused, path


@pytest.mark.parametrize(
    "raw", [b"/v1/chat%2fcompletions", b"/v1/%2e%2e/x", b"/v1/a%3bb", b"/v1/a%5cb", b"/v1/a%2500"]
)
def test_dangerous_escapes_in_the_raw_path_are_refused(raw: bytes) -> None:
    from urllib.parse import unquote

    assert res(unquote(raw.decode()), raw).refused


def test_harmless_escapes_are_served() -> None:
    found = res("/v1/models/my model", b"/v1/models/my%20model")
    assert not found.refused
    assert found.params["model"] == "my model"


@given(st.text(alphabet="/.;%\\abv1V2", max_size=30))
def test_resolution_is_canonical_or_refused(path: str) -> None:
    path = "/" + path
    found = res(path)
    if found is None:
        return
    assert found.path == canonical_path(found.path)
    if not found.refused:
        # Served as is, or rewritten from exactly one trailing slash.
        assert path in (found.path, found.path + "/")
        assert res(found.path) == type(found)(found.path, found.spec, found.params)


def test_table_rows_are_canonical_and_named_once() -> None:
    names = [spec.name for spec in ENDPOINTS]
    assert len(names) == len(set(names))
    with pytest.raises(ValueError, match="canonical"):
        EndpointSpec("x", "/v1/x/", frozenset({"GET"}))
    with pytest.raises(ValueError, match="last segment"):
        EndpointSpec("x", "/v1/{a:path}/b", frozenset({"GET"}))
    assert "HEAD" in next(s for s in ENDPOINTS if s.name == "models.list").methods


# --- every layer alone applies the same rule --------------------------------------------

seen: list[tuple[str, str | None]] = []


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    ctx = get_context(scope)
    seen.append((scope["path"], ctx.route[0] if ctx and ctx.route else None))
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


KEY = new_key_record(name="k")


@pytest.mark.parametrize(
    "layer",
    [
        lambda: APIKeyAuth(app, store=MemoryKeyStore([KEY.record])),
        lambda: RequestValidation(app),
        lambda: Routing(app, models_endpoint=True),
        lambda: ResponsesAdapter(app),
        lambda: UpstreamProvider("http://up/v1"),
    ],
    ids=["auth", "validation", "routing", "adapter", "provider"],
)
async def test_each_layer_refuses_non_canonical_gateway_paths(layer: Any) -> None:
    headers = [("authorization", f"Bearer {KEY.key}"), ("content-type", "application/json")]
    for path in ("/v1/./chat/completions", "/v1/chat/completions;", "/v1//models", "/V1/models"):
        response = await call_raw(layer(), "POST", path, headers=headers, body=CHAT)
        assert response.status == 404, path
        assert response.json()["error"]["code"] == "resource_not_found"


async def test_the_trailing_slash_rewrite_reaches_the_app_once() -> None:
    seen.clear()
    stack = APIKeyAuth(RequestValidation(app), store=MemoryKeyStore([KEY.record]))
    headers = [("authorization", f"Bearer {KEY.key}")]
    response = await call_raw(stack, "GET", "/v1/whoami/", headers=headers)
    assert response.status == 200
    assert seen == [("/v1/whoami", "/v1/whoami")]  # rewritten, and resolved once on the context


async def test_model_retrieve_is_not_decoded_twice() -> None:
    routing = Routing(app)
    # '%252e%252e' arrives decoded once as '%2e%2e': refused, never decoded into '..'.
    response = await call_raw(routing, "GET", "/v1/models/%252e%252e")
    assert response.status == 404
    assert response.json()["error"]["code"] == "resource_not_found"


# --- the provider's boundary --------------------------------------------------------------


def recording_provider(**options: Any) -> tuple[UpstreamProvider, list[httpx.Request]]:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"object": "list", "data": []})

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return UpstreamProvider("http://up/v1", api_key="sk-x", client=client, **options), requests


async def test_opt_in_endpoints_are_forwarded_only_when_enabled() -> None:
    closed, closed_seen = recording_provider()
    opened, opened_seen = recording_provider(forward=("embeddings",))
    body = b'{"model": "e", "input": "x"}'
    assert (await call_raw(closed, "POST", "/v1/embeddings", body=body)).status == 404
    assert (await call_raw(opened, "POST", "/v1/embeddings", body=body)).status == 200
    assert closed_seen == []
    assert [str(r.url) for r in opened_seen] == ["http://up/v1/embeddings"]
    with pytest.raises(ValueError, match="cannot be enabled"):
        UpstreamProvider("http://up/v1", forward=("files",))


async def test_the_provider_forwards_the_quoted_canonical_path_only() -> None:
    provider, requests = recording_provider()
    assert (await call_raw(provider, "GET", "/v1/models/a%3Fb")).status == 200
    assert (await call_raw(provider, "OPTIONS", "/v1/chat/completions", body=CHAT)).status == 405
    assert (await call_raw(provider, "GET", "/v1/files")).status == 404
    assert (await call_raw(provider, "GET", "/v1/models/../files")).status == 404
    assert [(r.method, r.url.raw_path) for r in requests] == [("GET", b"/v1/models/a%3Fb")]


async def test_require_identity_keeps_the_key_off_unauthenticated_requests() -> None:
    provider, requests = recording_provider(require_identity=True)
    response = await call_raw(
        provider,
        "POST",
        "/v1/chat/completions",
        body=CHAT,
        headers=[("content-type", "application/json")],
    )
    assert response.status == 401
    assert requests == []


@pytest.mark.parametrize("raw", [None, "same", "escaped"])
def test_exact_row_paths_resolve_as_the_full_checks_do(
    raw: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The precomputed answer for a row's own path is what the full checks find, and a raw
    path with an escape still goes through them (an encoded slash is refused)."""
    from akgate import _endpoints

    for path in _endpoints._EXACT:
        raw_path = {None: None, "same": path.encode(), "escaped": path.encode() + b"%2f"}[raw]
        scope = {} if raw_path is None else {"raw_path": raw_path}
        fast = _endpoints.resolve(scope, path)
        monkeypatch.setattr(_endpoints, "_EXACT", {})
        full = _endpoints.resolve(scope, path)
        monkeypatch.undo()
        assert fast is not None
        assert full is not None
        assert (fast.path, fast.spec, dict(fast.params), fast.rewrite, fast.refused) == (
            full.path,
            full.spec,
            dict(full.params),
            full.rewrite,
            full.refused,
        )
        assert fast.refused is (raw == "escaped")


_PATHS = st.sampled_from(
    ["/v1/chat/completions", "/v1/chat/completions/", "/v1//responses", "/v1/x", "/app", "/v1"]
) | st.text(alphabet="/.;%abv1", max_size=12).map(lambda p: "/" + p)


@given(_PATHS, st.sampled_from(["none", "fresh", "resolved", "other path"]))
def test_gateway_scope_with_the_context_given_answers_as_when_it_looks(
    path: str, ctx_state: str
) -> None:
    # Auth and validation pass the context they already hold instead of a second look-up.
    from akgate._endpoints import gateway_scope
    from akgate.context import request_context

    async def nothing(message: Any) -> None:  # pragma: no cover - never called
        pass

    results = []
    for given_ctx in (False, True):
        scope: Scope = {"type": "http", "path": path, "raw_path": path.encode(), "headers": []}
        if ctx_state != "none":
            scope, _, ctx = request_context(scope, nothing)
            if ctx_state == "resolved":
                gateway_scope(scope)
            elif ctx_state == "other path":
                ctx.route = ("/elsewhere", None)
        ctx_now = get_context(scope)
        new_scope, resolution = gateway_scope(scope, ctx_now) if given_ctx else gateway_scope(scope)
        route = None if ctx_now is None else ctx_now.route
        results.append((new_scope["path"], new_scope["raw_path"], resolution, route))
    assert results[0] == results[1]


@settings(max_examples=100, deadline=None)
@given(
    _PATHS,
    st.sampled_from(["GET", "POST"]),
    st.sampled_from(["fresh", "resolved", "stale"]),
    st.booleans(),
)
async def test_auth_and_validation_take_a_resolved_path_from_the_context_as_they_would_find_it(
    path: str, method: str, ctx_state: str, with_auth: bool
) -> None:
    # Both read ctx.route when it is this path's (an outer layer resolved it); a context without
    # it, or with another path's, gets the look-up itself. The answers must not differ.
    from akgate._endpoints import gateway_scope
    from akgate.context import request_context

    async def nothing(message: Any) -> None:  # pragma: no cover - never called
        pass

    outcomes = []
    for state in ("fresh", ctx_state):
        seen.clear()
        sent: list[Any] = []
        scope: Scope = {
            "type": "http",
            "method": method,
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [
                (b"authorization", b"Bearer " + KEY.key.encode()),
                (b"content-type", b"application/json"),
            ],
        }
        scope, _, ctx = request_context(scope, nothing)
        if state == "resolved":
            gateway_scope(scope, ctx)
        elif state == "stale":
            ctx.route = ("/v1/models", resolve({}, "/v1/models"))

        async def receive() -> Any:
            return {"type": "http.request", "body": CHAT, "more_body": False}

        async def send(message: Any) -> None:
            sent.append(message)

        stack: Any = RequestValidation(app)
        if with_auth:
            stack = APIKeyAuth(stack, store=MemoryKeyStore([KEY.record]))
        await stack(scope, receive, send)
        body = b"".join(m.get("body", b"") for m in sent[1:])
        outcomes.append((sent[0]["status"], body if sent[0]["status"] != 200 else b"", seen[:]))
    assert outcomes[0][:2] == outcomes[1][:2]
    assert [p for p, _ in outcomes[0][2]] == [p for p, _ in outcomes[1][2]]
