"""Per-key request limits: fixed windows (default one minute), in memory or in Redis.

A fixed window counts requests per key in ``[k * window, (k + 1) * window)``. It is exact inside
a window (no request is admitted over the limit, in one process or across processes sharing
Redis), costs one counter per key and gives a clean reset time for the headers; the known price
is a burst of up to two windows' worth across a window boundary.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Final, NamedTuple, Protocol, runtime_checkable

from ._keys import iso_timestamp
from ._redis import connect_redis, redis_errors
from ._stores import KeyStoreUnavailable

__all__ = ["MemoryRateLimiter", "RateLimitResult", "RateLimiter", "RedisRateLimiter"]


@lru_cache(maxsize=64)
def _reset_header(reset_at: float) -> bytes:
    return (iso_timestamp(reset_at) or "").encode()


class RateLimitResult(NamedTuple):
    """The outcome of counting one request against a key's limit."""

    allowed: bool
    limit: int
    remaining: int
    #: Epoch seconds when the current window ends.
    reset_at: float

    def retry_after(self, now: float) -> int:
        """Whole seconds until the window resets (at least 1)."""
        return max(1, math.ceil(self.reset_at - now))

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit-requests", str(self.limit).encode()),
            (b"x-ratelimit-remaining-requests", str(self.remaining).encode()),
            (b"x-ratelimit-reset-requests", _reset_header(self.reset_at)),
        ]


@runtime_checkable
class RateLimiter(Protocol):
    """Counts a request for ``key_id`` against ``limit`` per window.

    Raises :class:`~akgate.auth.KeyStoreUnavailable` when its backend is down (503).
    """

    window: float

    async def hit(self, key_id: str, limit: int) -> RateLimitResult: ...


class MemoryRateLimiter:
    """Fixed-window counters in this process (one worker). ``clock`` returns epoch seconds."""

    def __init__(
        self,
        *,
        window: float = 60.0,
        clock: Callable[[], float] = time.time,
        max_keys: int = 100_000,
    ) -> None:
        if window <= 0:
            raise ValueError("window must be > 0")
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        # key_id -> [window index, count]; no await between read and write, so no overshoot.
        self._counters: dict[str, list[int]] = {}

    async def hit(self, key_id: str, limit: int) -> RateLimitResult:
        index = int(self.clock() // self.window)
        counter = self._counters.get(key_id)
        if counter is None or counter[0] != index:
            if counter is None and len(self._counters) >= self.max_keys:
                self._prune(index)
            counter = self._counters[key_id] = [index, 0]
        counter[1] += 1
        count = counter[1]
        return RateLimitResult(
            allowed=count <= limit,
            limit=limit,
            remaining=max(0, limit - count),
            reset_at=(index + 1) * self.window,
        )

    def _prune(self, index: int) -> None:
        stale = [key for key, (i, _) in self._counters.items() if i != index]
        for key in stale:
            del self._counters[key]
        if len(self._counters) >= self.max_keys:
            # All keys active in this window: forget the oldest entries rather than grow.
            for key in list(self._counters)[: self.max_keys // 10 or 1]:
                del self._counters[key]


_INCR_SCRIPT: Final = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class RedisRateLimiter:
    """Fixed-window counters in Redis, shared by every process: one atomic round trip (a Lua
    ``INCR`` + ``PEXPIRE``) per request.

    The window index comes from ``clock`` (epoch seconds), so hosts should keep their clocks in
    sync (NTP); a skew only shifts window boundaries.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str = "akgate:rl:",
        window: float = 60.0,
        timeout: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (url is None) == (client is None):
            raise ValueError("give exactly one of url or client")
        if window <= 0:
            raise ValueError("window must be > 0")
        self.client: Any = (
            client if client is not None else connect_redis(url or "", timeout=timeout)
        )
        self.prefix = prefix
        self.window = window
        self.clock = clock
        self._errors = redis_errors()
        self._script = self.client.register_script(_INCR_SCRIPT)
        # Counters outlive their window a little so that a slow request still finds its own.
        self._ttl_ms = str(int(window * 1000) + 1000)

    def __repr__(self) -> str:
        return f"RedisRateLimiter(prefix={self.prefix!r}, window={self.window})"

    async def hit(self, key_id: str, limit: int) -> RateLimitResult:
        index = int(self.clock() // self.window)
        try:
            count = int(
                await self._script(keys=[f"{self.prefix}{key_id}:{index}"], args=[self._ttl_ms])
            )
        except self._errors as exc:
            raise KeyStoreUnavailable(
                f"Redis rate limiter is unavailable ({type(exc).__name__})"
            ) from exc
        return RateLimitResult(
            allowed=count <= limit,
            limit=limit,
            remaining=max(0, limit - count),
            reset_at=(index + 1) * self.window,
        )

    async def aclose(self) -> None:
        try:
            await self.client.aclose()
        except self._errors:  # pragma: no cover
            pass
