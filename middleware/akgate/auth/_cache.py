"""A small bounded TTL cache for store lookups (keys in the SQLite and Redis key stores, spend
limits in the SQL usage stores), with one read at a time per missed key."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar, cast

import anyio

__all__ = ["TTLCache"]

V = TypeVar("V")
_MISSING = object()


class _SharedRead:
    """One key's read in flight, awaited by the callers that missed the key meanwhile."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.error: Exception | None = None


class TTLCache(Generic[V]):
    """LRU-bounded mapping whose entries expire ``ttl`` seconds after they were stored.

    The short TTL bounds how long a revocation made elsewhere (another worker, the CLI) takes to
    reach this process; ``ttl=0`` disables caching.
    """

    def __init__(
        self, *, maxsize: int, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if maxsize < 0 or ttl < 0:
            raise ValueError("cache size and TTL must be >= 0")
        self.maxsize = maxsize
        self.ttl = ttl
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self._reads: dict[str, _SharedRead] = {}

    @property
    def enabled(self) -> bool:
        return self.maxsize > 0 and self.ttl > 0

    def get(self, key: str) -> tuple[bool, V | None]:
        """``(True, value)`` on a fresh hit, ``(False, None)`` otherwise."""
        entry = self._data.get(key)
        if entry is None:
            return False, None
        if self._clock() >= entry[0]:
            del self._data[key]
            return False, None
        return True, entry[1]

    async def read_through(self, key: str, read: Callable[[], Awaitable[V]]) -> V:
        """The fresh cached value of ``key``, else ``await read()``, then cached.

        Callers that miss ``key`` while a read of it is in flight wait for that read instead of
        starting their own: when a hot entry expires, every request in flight misses it at once,
        and each would take its own thread hop for the same row. The read's error is theirs at
        once (a 503 each, not a wait each); a read cancelled with its caller is started again
        by the next of them. Without caching (``enabled`` false) every call reads.
        """
        hit, value = self.get(key)
        if hit:
            return cast(V, value)
        if not self.enabled:
            return await read()
        while (pending := self._reads.get(key)) is not None:
            await pending.done.wait()
            if pending.error is not None:
                raise pending.error
            hit, value = self.get(key)
            if hit:
                return cast(V, value)
            # That read was cancelled with its caller: read again, still one at a time.
        shared = _SharedRead()
        self._reads[key] = shared
        try:
            fresh = await read()
        except Exception as exc:
            shared.error = exc
            raise
        finally:
            del self._reads[key]
            shared.done.set()
        self.set(key, fresh)
        return fresh

    def set(self, key: str, value: V) -> None:
        if not self.enabled:
            return
        self._data[key] = (self._clock() + self.ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def discard(self, key: str) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
