"""A small bounded TTL cache for key lookups (shared by the SQLite and Redis stores)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["TTLCache"]

V = TypeVar("V")
_MISSING = object()


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
