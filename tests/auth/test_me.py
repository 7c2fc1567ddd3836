"""GET /v1/me in the auriko SDK 1.2.0 shape."""

from __future__ import annotations

from auriko.models.common import ApiKeyIdentity

from .conftest import NOW, auth_app, bearer, client_for, make_key


async def test_me_returns_sdk_shape() -> None:
    key = make_key(
        name="ci", scopes=["chat"], rate_limit_rpm=30, expires_at=NOW + 3600, workspace_id="ws"
    )
    async with client_for(auth_app(key)) as c:
        r = await c.get("/v1/me", headers=bearer(key.key))
    assert r.status_code == 200
    identity = ApiKeyIdentity.model_validate(r.json())
    assert identity.credential_type == "api_key"
    assert identity.status == "active"
    assert identity.key_id == identity.key_prefix == key.key_id
    assert identity.key_name == "ci"
    assert identity.workspace.id == "ws"
    assert identity.scopes == ["chat"]
    assert identity.rate_limits.inference_rpm == 30
    assert identity.expires_at == "2023-11-14T23:13:50Z"
    assert identity.created_at.endswith("Z")
    assert r.headers["x-ratelimit-limit-requests"] == "30"


async def test_me_without_limit_reports_zero_rpm_and_null_expiry() -> None:
    key = make_key()
    async with client_for(auth_app(key)) as c:
        body = (await c.get("/v1/me", headers=bearer(key.key))).json()
    assert body["rate_limits"]["inference_rpm"] == 0
    assert body["expires_at"] is None


async def test_me_needs_a_key() -> None:
    async with client_for(auth_app(make_key())) as c:
        assert (await c.get("/v1/me")).status_code == 401


async def test_me_is_reachable_with_any_scope() -> None:
    key = make_key(scopes=["models"])
    async with client_for(auth_app(key)) as c:
        assert (await c.get("/v1/me", headers=bearer(key.key))).status_code == 200


async def test_me_rejects_post() -> None:
    key = make_key()
    async with client_for(auth_app(key)) as c:
        r = await c.post("/v1/me", headers=bearer(key.key))
    assert (r.status_code, r.json()["error"]["code"]) == (405, "method_not_allowed")


async def test_me_path_can_be_disabled() -> None:
    key = make_key()
    async with client_for(auth_app(key, me_endpoint=False)) as c:
        r = await c.get("/v1/me", headers=bearer(key.key))
    assert r.json()["seen"]["path"] == "/v1/me"  # the wrapped app answered
