"""Base classes for the wire types.

Request types are strict (no type coercion: ``"1"`` is not an integer, ``1`` is not a boolean) and
forbid unknown keys; response types are lenient builders that keep extra fields, since they carry
whatever an upstream sent.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["OpenRequestModel", "RequestModel", "ResponseModel"]

# Wire fields such as ``model_canonical`` start with ``model_``: pydantic < 2.10 warns about that
# prefix unless the protected namespaces are cleared.


class RequestModel(BaseModel):
    model_config = ConfigDict(
        strict=True, extra="forbid", allow_inf_nan=False, protected_namespaces=()
    )


class OpenRequestModel(BaseModel):
    """Strict types, but unknown keys are ignored (OpenAI-shaped objects that clients extend)."""

    model_config = ConfigDict(
        strict=True, extra="ignore", allow_inf_nan=False, protected_namespaces=()
    )


class ResponseModel(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())
