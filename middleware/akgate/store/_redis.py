"""The Redis response store: several hosts share responses, items, event logs and cancels."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from pydantic_core import from_json, to_json

from akgate.auth._redis import connect_redis, redis_errors

from ._base import (
    DEFAULT_MAX_RECORD_SIZE,
    DEFAULT_TTL,
    ResponseStoreUnavailable,
    StoredResponse,
    check_size,
)

__all__ = ["RedisResponseStore"]

#: An update retried this often without getting its write in (a record written continuously by
#: other clients) is reported as the store being unavailable.
_MAX_UPDATE_ATTEMPTS: Final = 100


class RedisResponseStore:
    """Responses in Redis, expired by Redis itself (``EX`` on every key).

    Keys (``prefix`` default ``akgate:``): ``resp:{workspace}:{id}`` the record,
    ``item:{workspace}:{item id}`` each item (``[response id, expiry, item]``),
    ``events:{id}`` a sorted set of a background stream's events, ``cancel:{id}`` a cancel
    flag. A read is one round trip (``GET``/``MGET``), a save one pipelined transaction.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str = "akgate:",
        ttl: float = DEFAULT_TTL,
        max_record_size: int = DEFAULT_MAX_RECORD_SIZE,
        timeout: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (url is None) == (client is None):
            raise ValueError("give exactly one of url or client")
        if ttl <= 0 or max_record_size <= 0:
            raise ValueError("ttl and max_record_size must be positive")
        self.client: Any = (
            client if client is not None else connect_redis(url or "", timeout=timeout)
        )
        self._owns_client = client is None
        self.prefix = prefix
        self.ttl = ttl
        self.max_record_size = max_record_size
        self.clock = clock
        self._errors = redis_errors()

    def __repr__(self) -> str:
        return f"RedisResponseStore(prefix={self.prefix!r})"  # the URL may hold a password

    def _unavailable(self, exc: BaseException) -> ResponseStoreUnavailable:
        return ResponseStoreUnavailable(
            f"Redis response store is unavailable ({type(exc).__name__})"
        )

    def _key(self, kind: str, *parts: str) -> str:
        return f"{self.prefix}{kind}:{':'.join(parts)}"

    def _seconds_left(self, expires_at: float) -> int:
        return max(1, math.ceil(expires_at - self.clock()))

    async def save(self, record: StoredResponse) -> None:
        data = record.to_json()
        check_size(data, self.max_record_size)
        ex = self._seconds_left(record.expires_at)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.set(self._key("resp", record.workspace, record.id), data, ex=ex)
                for item in record.items():
                    pipe.set(
                        self._key("item", record.workspace, item["id"]),
                        to_json([record.id, record.expires_at, item]),
                        ex=ex,
                    )
                await pipe.execute()
        except self._errors as exc:
            raise self._unavailable(exc) from exc

    async def load(self, workspace: str, response_id: str) -> StoredResponse | None:
        try:
            data = await self.client.get(self._key("resp", workspace, response_id))
        except self._errors as exc:
            raise self._unavailable(exc) from exc
        return self._record(data)

    async def update(
        self, workspace: str, record_id: str, change: Callable[[StoredResponse], bool]
    ) -> StoredResponse | None:
        from redis.exceptions import WatchError

        key = self._key("resp", workspace, record_id)
        for _ in range(_MAX_UPDATE_ATTEMPTS):
            try:
                async with self.client.pipeline(transaction=True) as pipe:
                    # WATCH, read, change, MULTI/EXEC: EXEC fails when another client wrote the
                    # record in between, and the change is made again on what it wrote.
                    await pipe.watch(key)
                    stored = await pipe.get(key)
                    record = self._record(stored)
                    if record is None:
                        return None
                    # A copy of its own: ``change`` may edit the record's items in place.
                    before = {i["id"]: i for i in StoredResponse.from_json(stored).items()}
                    if not change(record):
                        return record
                    data = record.to_json()
                    check_size(data, self.max_record_size)
                    after = record.items()
                    kept = {item["id"] for item in after}
                    removed = [
                        self._key("item", workspace, item_id)
                        for item_id in before
                        if item_id not in kept
                    ]
                    if removed:  # deleted below only while this record still owns them
                        await pipe.watch(*removed)
                    owners = await pipe.mget(removed) if removed else []
                    ex = self._seconds_left(record.expires_at)
                    pipe.multi()
                    pipe.set(key, data, ex=ex)
                    for item in after:
                        if before.get(item["id"]) != item:
                            pipe.set(
                                self._key("item", workspace, item["id"]),
                                to_json([record_id, record.expires_at, item]),
                                ex=ex,
                            )
                    for item_key, owner in zip(removed, owners, strict=True):
                        if owner is not None and from_json(owner)[0] == record_id:
                            pipe.delete(item_key)
                    await pipe.execute()
                    return record
            except WatchError:
                continue
            except self._errors as exc:
                raise self._unavailable(exc) from exc
        raise ResponseStoreUnavailable(
            f"Redis response store: record kept changing under {_MAX_UPDATE_ATTEMPTS} updates"
        )

    def _record(self, data: Any) -> StoredResponse | None:
        if data is None:
            return None
        record = StoredResponse.from_json(data)
        return record if record.expires_at > self.clock() else None

    async def load_many(
        self, workspace: str, response_ids: Sequence[str]
    ) -> list[StoredResponse | None]:
        if not response_ids:
            return []
        keys = [self._key("resp", workspace, rid) for rid in response_ids]
        try:
            values = await self.client.mget(keys)
        except self._errors as exc:
            raise self._unavailable(exc) from exc
        return [self._record(v) for v in values]

    async def delete(self, workspace: str, response_id: str) -> bool:
        record = await self.load(workspace, response_id)
        keys = [
            self._key("resp", workspace, response_id),
            self._key("events", response_id),
            self._key("cancel", response_id),
        ]
        if record is not None:
            keys += [self._key("item", workspace, i["id"]) for i in record.items()]
        try:
            await self.client.delete(*keys)
        except self._errors as exc:
            raise self._unavailable(exc) from exc
        return record is not None

    async def find_items(
        self, workspace: str, item_ids: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        ids = list(dict.fromkeys(item_ids))
        if not ids:
            return {}
        try:
            values = await self.client.mget([self._key("item", workspace, i) for i in ids])
        except self._errors as exc:
            raise self._unavailable(exc) from exc
        found: dict[str, dict[str, Any]] = {}
        now = self.clock()
        for item_id, value in zip(ids, values, strict=True):
            if value is not None:
                _, expires_at, item = from_json(value)
                if expires_at > now:
                    found[item_id] = item
        return found

    async def append_events(self, response_id: str, events: Sequence[tuple[int, bytes]]) -> None:
        if not events:
            return
        key = self._key("events", response_id)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                # The sequence number is the score; the member carries it too, so it is unique.
                pipe.zadd(key, {b"%d\n" % seq + data: seq for seq, data in events})
                pipe.expire(key, math.ceil(self.ttl))
                await pipe.execute()
        except self._errors as exc:
            raise self._unavailable(exc) from exc

    async def events_after(self, response_id: str, after: int) -> list[tuple[int, bytes]]:
        try:
            members = await self.client.zrangebyscore(
                self._key("events", response_id), f"({after}", "+inf"
            )
        except self._errors as exc:
            raise self._unavailable(exc) from exc
        events = []
        for member in members:
            seq, _, data = bytes(member).partition(b"\n")
            events.append((int(seq), data))
        return events

    async def request_cancel(self, response_id: str) -> None:
        try:
            await self.client.set(self._key("cancel", response_id), b"1", ex=math.ceil(self.ttl))
        except self._errors as exc:
            raise self._unavailable(exc) from exc

    async def cancel_requested(self, response_id: str) -> bool:
        try:
            return bool(await self.client.exists(self._key("cancel", response_id)))
        except self._errors as exc:
            raise self._unavailable(exc) from exc

    async def prune(self) -> int:
        return 0  # every key carries its own expiry

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()
