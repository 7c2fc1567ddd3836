"""The error envelope as wire types (docs/errors.md); the codes and their statuses are the
registry in ``akgate.errors``."""

from __future__ import annotations

from typing import Literal

from ._base import ResponseModel

__all__ = ["ErrorEnvelope", "ErrorObject", "ErrorType"]

ErrorType = Literal[
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "rate_limit_error",
    "api_error",
]


class ErrorObject(ResponseModel):
    message: str
    type: ErrorType
    code: str | None
    param: str | None
    doc_url: str | None = None
    provider: str | None = None
    suggestion: str | None = None


class ErrorEnvelope(ResponseModel):
    error: ErrorObject
