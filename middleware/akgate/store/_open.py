"""``open_response_store``: a store from a URL (``memory://``, ``sqlite:///path``, ``redis://``)."""

from __future__ import annotations

from typing import Any

from ._base import ResponseStore
from ._memory import MemoryResponseStore
from ._redis import RedisResponseStore
from ._sqlite import SQLiteResponseStore

__all__ = ["open_response_store"]


def open_response_store(url: str, **options: Any) -> ResponseStore:
    """The store a URL names; ``options`` (``ttl``, ``max_record_size`` ...) go to its class.

    * ``memory://``: this process only;
    * ``sqlite:///relative/path.sqlite3``, ``sqlite:////absolute/path.sqlite3``, or ``sqlite://``
      for the default file beside the key store;
    * ``redis://[:password@]host:port/db`` (or ``rediss://``).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(
            "a response store URL looks like memory://, sqlite:///path or redis://host:port"
        )
    scheme = scheme.lower()
    if scheme == "memory":
        return MemoryResponseStore(**options)
    if scheme == "sqlite":
        path = rest[1:] if rest.startswith("/") else rest
        return SQLiteResponseStore(path or None, **options)
    if scheme in ("redis", "rediss", "unix"):
        return RedisResponseStore(url, **options)
    raise ValueError(f"unknown response store scheme {scheme!r} (memory, sqlite, redis)")
