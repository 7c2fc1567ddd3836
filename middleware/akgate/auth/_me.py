"""``GET /v1/me``: the calling key's identity in the shape the ``auriko`` SDK 1.2.0 parses
(``auriko.models.common.ApiKeyIdentity``)."""

from __future__ import annotations

from typing import Any

from akgate.context import Identity

from ._keys import iso_timestamp

__all__ = ["me_payload"]


def me_payload(identity: Identity, rate_limit_rpm: int | None) -> dict[str, Any]:
    """The identity object; ``inference_rpm`` is the effective limit, 0 when there is none."""
    return {
        "credential_type": "api_key",
        # A key that reached this endpoint passed the revoked/expired checks.
        "status": "active",
        "profile": identity.profile,
        "key_id": identity.key_id,
        "key_prefix": identity.key_id,
        "key_name": identity.name,
        "environment": identity.environment,
        "workspace": {"id": identity.workspace_id, "name": identity.workspace_name},
        "scopes": list(identity.scopes),
        "allowed_models": list(identity.allowed_models),
        "rate_limits": {
            "inference_rpm": rate_limit_rpm or 0,
            "management_reads_rpm": 0,
            "management_writes_rpm": 0,
        },
        "expires_at": iso_timestamp(identity.expires_at),
        "created_at": iso_timestamp(identity.created_at or 0.0),
    }
