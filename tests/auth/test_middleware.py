"""APIKeyAuth: headers, errors, identity, paths, scopes, models, test keys."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from akgate._types import Message, Receive, Scope, Send
from akgate.auth import APIKeyAuth, MemoryKeyStore, MemoryRateLimiter
from akgate.auth._stores import KeyStoreUnavailable
from akgate.context import get_context

from .conftest import CHAT, NOW, Clock, auth_app, bearer, client_for, inner_app, make_key


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert response.headers["x-request-id"]
    assert response.headers["content-type"].startswith("application/json")
    return error


MISSING = "No API key provided. Send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'."
NOT_AKGATE = (
    "Invalid API key provided: not an akgate key (akgate keys start with ak_live_ or ak_test_; "
    "check that it was copied whole)."
)


def assert_invalid(response: httpx.Response, message: str = "Invalid API key provided.") -> None:
    error = assert_error(response, 401, "invalid_api_key")
    assert error["message"] == message
    assert error["type"] == "authentication_error"
    assert error["param"] is None
    assert response.headers["www-authenticate"] == "Bearer"


async def test_valid_bearer_key_reaches_app(client: httpx.AsyncClient, live_key: Any) -> None:
    response = await client.post("/v1/chat/completions", json=CHAT, headers=bearer(live_key.key))
    assert response.status_code == 200
    assert response.json()["seen"]["key_id"] == live_key.key_id
    assert response.headers["x-request-id"]


async def test_valid_x_api_key_reaches_app(client: httpx.AsyncClient, live_key: Any) -> None:
    response = await client.post(
        "/v1/chat/completions", json=CHAT, headers={"x-api-key": live_key.key}
    )
    assert response.status_code == 200


async def test_lowercase_bearer_scheme_is_accepted(
    client: httpx.AsyncClient, live_key: Any
) -> None:
    response = await client.get("/v1/models", headers={"Authorization": f"bearer {live_key.key}"})
    assert response.status_code == 200


async def test_both_headers_agreeing_are_accepted(client: httpx.AsyncClient, live_key: Any) -> None:
    headers = {**bearer(live_key.key), "x-api-key": live_key.key}
    assert (await client.get("/v1/models", headers=headers)).status_code == 200


async def test_no_header_is_401(client: httpx.AsyncClient) -> None:
    assert_invalid(await client.post("/v1/chat/completions", json=CHAT), MISSING)


async def test_empty_bearer_is_401(client: httpx.AsyncClient) -> None:
    assert_invalid(await client.get("/v1/models", headers={"Authorization": "Bearer "}), MISSING)


async def test_empty_x_api_key_is_401(client: httpx.AsyncClient) -> None:
    assert_invalid(await client.get("/v1/models", headers={"x-api-key": ""}), MISSING)


async def test_wrong_scheme_is_401(client: httpx.AsyncClient, live_key: Any) -> None:
    headers = {"Authorization": f"Basic {live_key.key}"}
    assert_invalid(await client.get("/v1/models", headers=headers))


async def test_bad_checksum_is_401_without_lookup(live_key: Any) -> None:
    class CountingStore(MemoryKeyStore):
        calls = 0

        async def lookup(self, key_hash: str) -> Any:
            CountingStore.calls += 1
            return await super().lookup(key_hash)

    app = auth_app(store=CountingStore([live_key.record]))
    bad = live_key.key[:-1] + ("A" if live_key.key[-1] != "A" else "B")
    async with client_for(app) as c:
        assert_invalid(await c.get("/v1/models", headers=bearer(bad)), NOT_AKGATE)
    assert CountingStore.calls == 0


async def test_other_prefix_is_401(client: httpx.AsyncClient) -> None:
    assert_invalid(
        await client.get("/v1/models", headers=bearer("sk-proj-" + "a" * 48)), NOT_AKGATE
    )


async def test_unknown_well_formed_key_is_401(client: httpx.AsyncClient) -> None:
    assert_invalid(await client.get("/v1/models", headers=bearer(make_key().key)))


async def test_revoked_key_is_401(live_key: Any) -> None:
    store = MemoryKeyStore([live_key.record])
    await store.revoke(live_key.key_id)
    async with client_for(auth_app(store=store)) as c:
        assert_invalid(await c.get("/v1/models", headers=bearer(live_key.key)))


async def test_expired_key_is_401_expired_api_key() -> None:
    key = make_key(expires_at=NOW - 1)
    async with client_for(auth_app(key)) as c:
        response = await c.get("/v1/models", headers=bearer(key.key))
    error = assert_error(response, 401, "expired_api_key")
    assert error["type"] == "authentication_error"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_key_expires_when_the_clock_passes_expiry() -> None:
    clock = Clock()
    key = make_key(expires_at=NOW + 10)
    async with client_for(auth_app(key, clock=clock)) as c:
        assert (await c.get("/v1/models", headers=bearer(key.key))).status_code == 200
        clock.now = NOW + 10
        assert_error(await c.get("/v1/models", headers=bearer(key.key)), 401, "expired_api_key")


async def test_huge_header_is_401(client: httpx.AsyncClient) -> None:
    assert_invalid(
        await client.get("/v1/models", headers=bearer("ak_live_" + "a" * 60_000)), NOT_AKGATE
    )


async def test_disagreeing_headers_are_401(client: httpx.AsyncClient, live_key: Any) -> None:
    headers = {**bearer(live_key.key), "x-api-key": make_key().key}
    assert_invalid(await client.get("/v1/models", headers=headers))


async def test_duplicate_authorization_headers_disagreeing_are_401(
    client: httpx.AsyncClient, live_key: Any
) -> None:
    headers = [("authorization", f"Bearer {live_key.key}"), ("authorization", "Bearer other")]
    assert_invalid(await client.get("/v1/models", headers=headers))


async def test_store_failure_is_503_never_401(live_key: Any) -> None:
    class DownStore(MemoryKeyStore):
        async def lookup(self, key_hash: str) -> Any:
            raise KeyStoreUnavailable("down")

    async with client_for(auth_app(store=DownStore())) as c:
        response = await c.get("/v1/models", headers=bearer(live_key.key))
    error = assert_error(response, 503, "service_unavailable")
    assert error["type"] == "api_error"
    assert response.headers["retry-after"] == "1"


async def test_unexpected_store_exception_is_503(live_key: Any) -> None:
    class BrokenStore(MemoryKeyStore):
        async def lookup(self, key_hash: str) -> Any:
            raise RuntimeError("boom")

    async with client_for(auth_app(store=BrokenStore())) as c:
        assert_error(
            await c.get("/v1/models", headers=bearer(live_key.key)), 503, "service_unavailable"
        )


async def test_identity_is_in_context(live_key: Any) -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        ctx = get_context(scope)
        assert ctx is not None
        seen.append(ctx.identity)
        await inner_app(scope, receive, send)

    key = make_key(name="ci", scopes=["chat"], rate_limit_rpm=5, workspace_id="ws1")
    auth = APIKeyAuth(app, store=MemoryKeyStore([key.record]), clock=Clock())
    async with client_for(auth) as c:
        await c.post("/v1/chat/completions", json=CHAT, headers=bearer(key.key))
    identity = seen[0]
    assert (identity.key_id, identity.name, identity.workspace_id) == (key.key_id, "ci", "ws1")
    assert identity.scopes == ("chat",)
    assert identity.rate_limit_rpm == 5
    assert identity.environment == "live"


async def test_unprotected_path_passes_without_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json()["seen"]["key_id"] is None
    assert response.headers["x-request-id"]


async def test_public_v1_paths_pass_without_key(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/directory/models")).status_code == 200


async def test_options_preflight_passes_without_key(client: httpx.AsyncClient) -> None:
    assert (await client.options("/v1/chat/completions")).status_code == 200


async def test_custom_protected_paths() -> None:
    key = make_key()
    async with client_for(auth_app(key, protected_paths=["/api/"])) as c:
        assert (await c.get("/health")).status_code == 200
        assert_invalid(await c.get("/api/things"), MISSING)
        assert_invalid(
            await c.get("/public/../api/things"), MISSING
        )  # judged on the canonical form
        assert_invalid(await c.get("/v1/models"), MISSING)  # the gateway's endpoints need a key


async def test_root_path_is_respected(live_key: Any) -> None:
    app = auth_app(live_key)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, root_path="/gw"), base_url="http://t"
    ) as c:
        assert_invalid(await c.get("/gw/v1/models"), MISSING)


async def test_body_reaches_app_unchanged_without_model_restrictions(
    client: httpx.AsyncClient, live_key: Any
) -> None:
    content = b'{"model": "x", "messages": []}'
    response = await client.post(
        "/v1/chat/completions", content=content, headers=bearer(live_key.key)
    )
    assert response.json()["seen"]["body"] == content.decode()


async def test_unrestricted_key_does_not_read_body(live_key: Any) -> None:
    bodies: list[bytes | None] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        ctx = get_context(scope)
        assert ctx is not None
        bodies.append(ctx.body)
        await inner_app(scope, receive, send)

    auth = APIKeyAuth(app, store=MemoryKeyStore([live_key.record]), clock=Clock())
    async with client_for(auth) as c:
        r = await c.post("/v1/chat/completions", json=CHAT, headers=bearer(live_key.key))
    assert r.status_code == 200
    assert bodies == [None]


async def test_scope_denied_is_403() -> None:
    key = make_key(scopes=["models"])
    async with client_for(auth_app(key)) as c:
        response = await c.post("/v1/chat/completions", json=CHAT, headers=bearer(key.key))
    error = assert_error(response, 403, "insufficient_permissions")
    assert error["type"] == "permission_error"


async def test_scope_granted_passes() -> None:
    key = make_key(scopes=["chat"])
    async with client_for(auth_app(key)) as c:
        assert (
            await c.post("/v1/chat/completions", json=CHAT, headers=bearer(key.key))
        ).status_code == 200
        assert_error(
            await c.post("/v1/responses", json={}, headers=bearer(key.key)),
            403,
            "insufficient_permissions",
        )


async def test_inference_scope_grants_chat_responses_models() -> None:
    key = make_key(scopes=["inference"])
    async with client_for(auth_app(key)) as c:
        for path in ("/v1/chat/completions", "/v1/responses"):
            assert (await c.post(path, json=CHAT, headers=bearer(key.key))).status_code == 200
        assert (await c.get("/v1/models/gpt-4o", headers=bearer(key.key))).status_code == 200


async def test_unmapped_path_needs_star_scope() -> None:
    key = make_key(scopes=["inference"])
    star = make_key(scopes=["*"])
    async with client_for(auth_app(key, star)) as c:
        # An app's own /v1 route (no table row) needs "*".
        assert_error(
            await c.get("/v1/whoami", headers=bearer(key.key)), 403, "insufficient_permissions"
        )
        assert (await c.get("/v1/whoami", headers=bearer(star.key))).status_code == 200


async def test_embeddings_needs_its_own_scope() -> None:
    key = make_key(scopes=["inference"])
    embeddings = make_key(scopes=["embeddings"])
    async with client_for(auth_app(key, embeddings)) as c:
        assert_error(
            await c.post("/v1/embeddings", json={}, headers=bearer(key.key)),
            403,
            "insufficient_permissions",
        )
        ok = await c.post("/v1/embeddings", json={}, headers=bearer(embeddings.key))
        assert ok.status_code == 200
        wrong_method = await c.get("/v1/embeddings", headers=bearer(embeddings.key))
        assert_error(wrong_method, 405, "method_not_allowed")


async def test_model_not_allowed_is_403_with_param() -> None:
    key = make_key(allowed_models=["gpt-4o-mini"])
    async with client_for(auth_app(key)) as c:
        response = await c.post("/v1/chat/completions", json=CHAT, headers=bearer(key.key))
    error = assert_error(response, 403, "insufficient_permissions")
    assert error["param"] == "model"


async def test_gateway_models_are_checked() -> None:
    key = make_key(allowed_models=["gpt-4o"])
    payload = {"messages": [], "gateway": {"models": ["gpt-4o", "claude-x"]}}
    async with client_for(auth_app(key)) as c:
        response = await c.post("/v1/responses", json=payload, headers=bearer(key.key))
    assert assert_error(response, 403, "insufficient_permissions")["param"] == "gateway.models[1]"


async def test_allowed_model_with_prefix_and_suffix_passes_and_body_is_replayed() -> None:
    key = make_key(allowed_models=["gpt-4o*"])
    payload = {**CHAT, "model": "gpt-4o-mini:cost"}
    async with client_for(auth_app(key)) as c:
        response = await c.post("/v1/chat/completions", json=payload, headers=bearer(key.key))
    assert response.status_code == 200
    assert '"gpt-4o-mini:cost"' in response.json()["seen"]["body"]


async def test_model_check_reports_bad_json_as_400() -> None:
    key = make_key(allowed_models=["gpt-4o"])
    async with client_for(auth_app(key)) as c:
        response = await c.post("/v1/chat/completions", content=b"{nope", headers=bearer(key.key))
    assert_error(response, 400, "invalid_request")


async def test_model_check_caps_body_size() -> None:
    key = make_key(allowed_models=["gpt-4o"])
    async with client_for(auth_app(key, max_body_size=10)) as c:
        response = await c.post("/v1/chat/completions", json=CHAT, headers=bearer(key.key))
    assert_error(response, 413, "payload_too_large")


async def test_test_key_rejected_when_test_keys_disallowed() -> None:
    key = make_key(environment="test")
    async with client_for(auth_app(key, allow_test_keys=False)) as c:
        response = await c.get("/v1/models", headers=bearer(key.key))
    assert_error(response, 403, "insufficient_permissions")


async def test_test_key_environment_reaches_app() -> None:
    key = make_key(environment="test")
    async with client_for(auth_app(key)) as c:
        response = await c.post("/v1/chat/completions", json=CHAT, headers=bearer(key.key))
    assert response.json()["seen"]["environment"] == "test"


async def test_pepper_must_match_between_store_and_layer() -> None:
    key = make_key(pepper=b"s3cret")
    async with client_for(auth_app(key, pepper=b"s3cret")) as c:
        assert (await c.get("/v1/models", headers=bearer(key.key))).status_code == 200
    async with client_for(auth_app(key, pepper=None)) as c:
        assert_invalid(await c.get("/v1/models", headers=bearer(key.key)))


async def test_lifespan_and_websocket_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    auth = APIKeyAuth(app, store=MemoryKeyStore(), limiter=None)

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        pass

    await auth({"type": "lifespan"}, receive, send)
    await auth({"type": "websocket", "path": "/v1/x", "headers": []}, receive, send)
    assert seen == ["lifespan", "websocket"]


async def test_works_with_starlette_add_middleware(live_key: Any) -> None:
    async def models(request: Request) -> JSONResponse:
        ctx = get_context(request.scope)
        return JSONResponse({"key_id": ctx.identity.key_id if ctx and ctx.identity else None})

    app = Starlette(routes=[Route("/v1/models", models)])
    app.add_middleware(APIKeyAuth, store=MemoryKeyStore([live_key.record]), limiter=None)
    async with client_for(app) as c:
        assert (await c.get("/v1/models", headers=bearer(live_key.key))).json() == {
            "key_id": live_key.key_id
        }
        assert_invalid(await c.get("/v1/models"), MISSING)


def test_bad_options_raise_value_error() -> None:
    with pytest.raises(ValueError):
        APIKeyAuth(inner_app, store=MemoryKeyStore(), default_rpm=0)
    with pytest.raises(ValueError):
        APIKeyAuth(inner_app, store=MemoryKeyStore(), protected_paths=["v1"])


async def test_default_store_reads_env_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    key = make_key()
    monkeypatch.setenv("AKGATE_API_KEYS", f" {key.key}, ")
    async with client_for(APIKeyAuth(inner_app)) as c:
        assert (await c.get("/v1/models", headers=bearer(key.key))).status_code == 200


def test_env_with_garbage_raises_without_echo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AKGATE_API_KEYS", "sk-supersecret")
    with pytest.raises(ValueError) as info:
        MemoryKeyStore.from_env()
    assert "supersecret" not in str(info.value)


async def test_secret_never_in_logs_or_responses(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    good = make_key(rate_limit_rpm=1)
    revoked = make_key()
    expired = make_key(expires_at=NOW - 1)
    unknown = make_key()
    store = MemoryKeyStore([good.record, revoked.record, expired.record])
    await store.revoke(revoked.key_id)
    secrets = [k.key for k in (good, revoked, expired, unknown)]
    bodies: list[str] = []
    async with client_for(auth_app(store=store, limiter=MemoryRateLimiter(clock=Clock()))) as c:
        for secret in secrets:
            for headers in (
                bearer(secret),
                {"x-api-key": secret},
                {"authorization": f"Basic {secret}"},
            ):
                r = await c.post("/v1/chat/completions", json=CHAT, headers=headers)
                bodies.append(r.text + str(r.headers))
        r = await c.get("/v1/me", headers=bearer(good.key))
        bodies.append(r.text + str(r.headers))
    assert any('"rate_limit_exceeded"' in b for b in bodies)
    text = caplog.text + "".join(bodies)
    for secret in secrets:
        assert secret not in text
        assert secret[16:48] not in text
    assert good.key_id in caplog.text


@settings(max_examples=60)
@given(value=st.binary(max_size=300))
def test_fuzzed_authorization_header_never_500(value: bytes) -> None:
    import anyio

    key = make_key()
    app = auth_app(key)
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/v1/models",
        "headers": [(b"authorization", value), (b"x-api-key", value)],
    }
    anyio.run(app, scope, receive, send)
    assert messages[0]["status"] in (200, 401)
