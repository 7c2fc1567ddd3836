"""The API-key auth layer: key format, stores, rate limits and the ``APIKeyAuth`` middleware."""

from __future__ import annotations

from ._cli import open_key_store
from ._keys import KeyRecord, NewKey, generate_key, hash_key, key_id_of, parse_key
from ._middleware import DEFAULT_PATH_SCOPES, INFERENCE_SCOPES, APIKeyAuth, default_store
from ._ratelimit import MemoryRateLimiter, RateLimiter, RateLimitResult, RedisRateLimiter
from ._redisstore import RedisKeyStore
from ._sqlite import SQLiteKeyStore, default_db_path
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
    "INFERENCE_SCOPES",
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
    "default_db_path",
    "default_store",
    "ensure_demo_key",
    "generate_key",
    "hash_key",
    "key_id_of",
    "new_key_record",
    "open_key_store",
    "parse_key",
]
