"""The API-key auth layer: key format, stores, rate limits and the ``APIKeyAuth`` middleware."""

from __future__ import annotations

from akgate._deprecated import deprecated_names as _deprecated_names

from ._cli import open_key_store
from ._keys import KeyRecord, NewKey, key_id_of
from ._middleware import DEFAULT_PATH_SCOPES, APIKeyAuth, default_store
from ._ratelimit import MemoryRateLimiter, RateLimiter, RateLimitResult, RedisRateLimiter
from ._redisstore import RedisKeyStore
from ._sqlite import SQLiteKeyStore
from ._stores import (
    KeyStore,
    KeyStoreUnavailable,
    MemoryKeyStore,
    create_key,
    ensure_demo_key,
    new_key_record,
)

__all__ = [
    "DEFAULT_PATH_SCOPES",
    "APIKeyAuth",
    "KeyRecord",
    "KeyStore",
    "KeyStoreUnavailable",
    "MemoryKeyStore",
    "MemoryRateLimiter",
    "NewKey",
    "RateLimitResult",
    "RateLimiter",
    "RedisKeyStore",
    "RedisRateLimiter",
    "SQLiteKeyStore",
    "create_key",
    "default_store",
    "ensure_demo_key",
    "key_id_of",
    "new_key_record",
    "open_key_store",
]


# Internals that were listed here before: still importable from this package, with a warning.
__getattr__ = _deprecated_names(
    __name__,
    instead="it is internal to akgate.auth (make keys with create_key or a KeyStore)",
    moved={
        "INFERENCE_SCOPES": "._middleware",
        "default_db_path": "._sqlite",
        "generate_key": "._keys",
        "hash_key": "._keys",
        "parse_key": "._keys",
    },
)
