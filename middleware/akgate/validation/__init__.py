"""The request validation layer: middleware and the per-endpoint checks it runs."""

from __future__ import annotations

from akgate._deprecated import deprecated_names as _deprecated_names

from ._middleware import DEFAULT_CHAT_PATHS, DEFAULT_RESPONSES_PATHS, RequestValidation
from ._validate import validate_chat_request, validate_request, validate_responses_request

__all__ = [
    "DEFAULT_CHAT_PATHS",
    "DEFAULT_RESPONSES_PATHS",
    "RequestValidation",
    "validate_chat_request",
    "validate_request",
    "validate_responses_request",
]


# Internals that were listed here before: still importable from this package, with a warning.
__getattr__ = _deprecated_names(
    __name__,
    instead="it is internal to akgate.validation (validate with validate_request)",
    moved={
        "AUTH_KEYS": "._extensions",
        "CHAT_FIELDS": "._validate",
        "CORE_FIELDS": "._extensions",
        "LEGACY_FIELDS": "._validate",
        "RESPONSES_FIELDS": "._validate",
        "UnknownFields": "._validate",
        "error_from_validation": "._from_pydantic",
        "loc_to_param": "._from_pydantic",
        "sanitize_extensions": "._extensions",
    },
)
