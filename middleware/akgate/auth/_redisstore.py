"""The Redis key store: several processes or machines share one set of keys."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Final

from ._cache import TTLCache
from ._keys import KeyRecord
from ._redis import connect_redis, redis_errors
from ._stores import KeyStoreUnavailable, check_changes

__all__ = ["RedisKeyStore"]

#: Attempts at a read-modify-write before giving up (each retry means another writer won).
_WRITE_ATTEMPTS: Final = 20


class RedisKeyStore:
    """Keys in Redis: ``{prefix}key:<hash>`` holds the record as JSON (one ``GET`` per lookup),
    ``{prefix}ids`` maps key ids to hashes for listing and revocation.

    Give ``url`` (``redis://...``) or an existing ``redis.asyncio`` ``client``. Lookups are cached
    like the SQLite store's (``cache_ttl`` seconds, default 2; ``cache_ttl=0`` disables it).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str = "akgate:",
        cache_ttl: float = 2.0,
        cache_size: int = 10_000,
        timeout: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (url is None) == (client is None):
            raise ValueError("give exactly one of url or client")
        self.client: Any = (
            client if client is not None else connect_redis(url or "", timeout=timeout)
        )
        self.prefix = prefix
        self._ids_key = prefix + "ids"
        self._errors = redis_errors()
        self._cache: TTLCache[KeyRecord | None] = TTLCache(
            maxsize=cache_size, ttl=cache_ttl, clock=clock
        )

    def __repr__(self) -> str:
        # The URL may carry a password: never in the repr.
        return f"RedisKeyStore(prefix={self.prefix!r})"

    def _unavailable(self, exc: BaseException) -> KeyStoreUnavailable:
        return KeyStoreUnavailable(f"Redis key store is unavailable ({type(exc).__name__})")

    def _record_key(self, key_hash: str) -> str:
        return f"{self.prefix}key:{key_hash}"

    def cached(self, key_hash: str) -> KeyRecord | None:
        """The record :meth:`lookup` would return from its cache now, else None (then ask
        :meth:`lookup`): ``APIKeyAuth`` takes a known key's record without a coroutine."""
        hit, record = self._cache.get(key_hash)
        return record if hit else None

    async def lookup(self, key_hash: str) -> KeyRecord | None:
        hit, record = self._cache.get(key_hash)
        if hit:
            return record
        try:
            raw = await self.client.get(self._record_key(key_hash))
        except self._errors as exc:
            raise self._unavailable(exc) from exc
        record = None if raw is None else KeyRecord.from_dict(json.loads(raw))
        self._cache.set(key_hash, record)
        return record

    async def add(self, record: KeyRecord) -> None:
        try:
            if not await self.client.hsetnx(self._ids_key, record.key_id, record.key_hash):
                raise ValueError(f"duplicate key id {record.key_id}")
            await self.client.set(self._record_key(record.key_hash), json.dumps(record.to_dict()))
        except self._errors as exc:
            raise self._unavailable(exc) from exc
        self._cache.discard(record.key_hash)

    async def list_keys(self) -> list[KeyRecord]:
        try:
            hashes = await self.client.hvals(self._ids_key)
            if not hashes:
                return []
            raws = await self.client.mget([self._record_key(h.decode()) for h in hashes])
        except self._errors as exc:
            raise self._unavailable(exc) from exc
        records = [KeyRecord.from_dict(json.loads(raw)) for raw in raws if raw is not None]
        return sorted(records, key=lambda r: (r.created_at, r.key_id))

    async def _modify(
        self, key_id: str, change: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> KeyRecord | None:
        """Apply ``change`` to the stored record of ``key_id`` (None from it: leave the record
        as is) under ``WATCH``, so two writers (a revocation and an update) never lose one
        another's change; the record as stored afterwards, None if there is no such key."""
        from redis.exceptions import WatchError

        try:
            key_hash = await self.client.hget(self._ids_key, key_id)
            if key_hash is None:
                return None
            record_key = self._record_key(key_hash.decode())
            async with self.client.pipeline(transaction=True) as pipe:
                for _ in range(_WRITE_ATTEMPTS):
                    try:
                        await pipe.watch(record_key)
                        raw = await pipe.get(record_key)
                        if raw is None:
                            return None
                        data = json.loads(raw)
                        changed = change(data)
                        if changed is None:
                            return KeyRecord.from_dict(data)
                        pipe.multi()
                        pipe.set(record_key, json.dumps(changed))
                        await pipe.execute()
                    except WatchError:
                        continue
                    return KeyRecord.from_dict(changed)
        except self._errors as exc:
            raise self._unavailable(exc) from exc
        finally:
            # This process sees its own change at once; others within cache_ttl.
            self._cache.clear()
        raise KeyStoreUnavailable(f"Redis key store: {key_id} kept changing under this write")

    async def revoke(self, key_id: str, *, at: float | None = None) -> bool:
        when = time.time() if at is None else at

        def revoked(data: dict[str, Any]) -> dict[str, Any] | None:
            return None if data.get("revoked_at") is not None else {**data, "revoked_at": when}

        return await self._modify(key_id, revoked) is not None

    async def update(self, key_id: str, **changes: Any) -> KeyRecord | None:
        changes = check_changes(changes)
        return await self._modify(key_id, lambda data: {**data, **changes})

    async def aclose(self) -> None:
        try:
            await self.client.aclose()
        except self._errors:  # pragma: no cover - closing a dead connection
            pass
        self._cache.clear()
