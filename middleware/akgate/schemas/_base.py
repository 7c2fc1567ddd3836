"""Base classes for the wire types.

Request types are strict (no type coercion: ``"1"`` is not an integer, ``1`` is not a boolean) and
forbid unknown keys; response types are lenient builders that keep extra fields, since they carry
whatever an upstream sent.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["RequestModel", "ResponseModel"]


class RequestModel(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class ResponseModel(BaseModel):
    model_config = ConfigDict(extra="allow")
