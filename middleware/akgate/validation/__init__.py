"""The request validation layer: middleware and the per-endpoint checks it runs."""

from __future__ import annotations

from ._errors import error_from_validation, loc_to_param
from ._extensions import AUTH_KEYS, CORE_FIELDS, sanitize_extensions
from ._middleware import DEFAULT_CHAT_PATHS, DEFAULT_RESPONSES_PATHS, RequestValidation
from ._validate import (
    CHAT_FIELDS,
    LEGACY_FIELDS,
    RESPONSES_FIELDS,
    UnknownFields,
    validate_chat_request,
    validate_request,
    validate_responses_request,
)

__all__ = [
    "AUTH_KEYS",
    "CHAT_FIELDS",
    "CORE_FIELDS",
    "DEFAULT_CHAT_PATHS",
    "DEFAULT_RESPONSES_PATHS",
    "LEGACY_FIELDS",
    "RESPONSES_FIELDS",
    "RequestValidation",
    "UnknownFields",
    "error_from_validation",
    "loc_to_param",
    "sanitize_extensions",
    "validate_chat_request",
    "validate_request",
    "validate_responses_request",
]
