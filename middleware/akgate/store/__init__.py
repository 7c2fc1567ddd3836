"""Stateful Responses: the response store and the layer that serves ``store``,
``previous_response_id``, ``item_reference``, retrieval, cancel and background runs.

Backends: :class:`MemoryResponseStore`, :class:`SQLiteResponseStore` (the default under
``akgate serve``) and :class:`RedisResponseStore`; :func:`open_response_store` builds one from a
URL. See ``docs/stateful-responses.md``.
"""

from __future__ import annotations

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
from ._reasoning import KEYS_ENV as REASONING_KEYS_ENV
from ._reasoning import ReasoningKeyRing
from ._redis import RedisResponseStore
from ._sqlite import SQLiteResponseStore, default_responses_path

__all__ = [
    "DEFAULT_MAX_RECORD_SIZE",
    "DEFAULT_TTL",
    "REASONING_KEYS_ENV",
    "MemoryResponseStore",
    "ReasoningKeyRing",
    "RedisResponseStore",
    "ResponseStore",
    "ResponseStoreUnavailable",
    "ResponseTooLarge",
    "SQLiteResponseStore",
    "StatefulResponses",
    "StoredResponse",
    "default_responses_path",
    "open_response_store",
]
