"""Stateful Responses: the response store and the layer that serves ``store``,
``previous_response_id``, ``item_reference``, retrieval, cancel and background runs.

Backends: :class:`MemoryResponseStore`, :class:`SQLiteResponseStore` (the default under
``akgate serve``) and :class:`RedisResponseStore`; :func:`open_response_store` builds one from a
URL. See ``docs/stateful-responses.md``.
"""

from __future__ import annotations

from akgate._deprecated import deprecated_names as _deprecated_names

from ._base import (
    DEFAULT_MAX_RECORD_SIZE,
    DEFAULT_TTL,
    ResponseStore,
    ResponseStoreUnavailable,
    ResponseTooLarge,
    StoredResponse,
)
from ._memory import MemoryResponseStore
from ._middleware import StatefulResponses
from ._open import open_response_store
from ._reasoning import ReasoningKeyRing
from ._redis import RedisResponseStore
from ._sqlite import SQLiteResponseStore

__all__ = [
    "DEFAULT_MAX_RECORD_SIZE",
    "DEFAULT_TTL",
    "MemoryResponseStore",
    "ReasoningKeyRing",
    "RedisResponseStore",
    "ResponseStore",
    "ResponseStoreUnavailable",
    "ResponseTooLarge",
    "SQLiteResponseStore",
    "StatefulResponses",
    "StoredResponse",
    "open_response_store",
]


# Internals that were listed here before: still importable from this package, with a warning.
__getattr__ = _deprecated_names(
    __name__,
    instead="it is internal to akgate.store",
    moved={
        "REASONING_KEYS_ENV": (
            "._reasoning:KEYS_ENV",
            "the variable is AKGATE_REASONING_KEYS (ReasoningKeyRing.from_env reads it)",
        ),
        "default_responses_path": ("._sqlite", "SQLiteResponseStore() without a path uses it"),
    },
)
