"""Spend and token counters: reserve at admission, settle at the end.

A counter holds two integers: ``spent`` (settled) and ``reserved`` (held by requests in flight).
:meth:`SpendCounters.reserve` checks and reserves every counter of a request at once: it is
refused when an *enforced* counter already has ``spent + reserved >= limit``; otherwise each
counter's ``reserved`` grows by the request's estimate. :meth:`SpendCounters.settle` releases
the reservation and adds the real amount. USD is counted in integer units of 1e-10 USD (the
precision of ``routing_metadata.cost.usd``), so sums are exact.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple, Protocol, runtime_checkable

from akgate.auth._redis import connect_redis, redis_errors
from akgate.auth._stores import KeyStoreUnavailable

__all__ = [
    "USD_UNITS",
    "Admission",
    "MemorySpendCounters",
    "RedisSpendCounters",
    "Slot",
    "SpendCounters",
    "to_units",
]

#: Counter units per USD.
USD_UNITS: Final = 10_000_000_000


def to_units(usd: float) -> int:
    return round(usd * USD_UNITS)


class Slot(NamedTuple):
    """One counter a request is checked against (a budget period, or a tpm minute)."""

    key: str
    limit: int
    enforce: bool
    #: Epoch seconds after which the counter is no longer needed (its period ended).
    expires_at: float
    #: What this request reserves on it (its estimate).
    amount: int


class Admission(NamedTuple):
    """The outcome of :meth:`SpendCounters.reserve`."""

    #: Index of the first enforced slot that is used up (nothing was reserved); -1: admitted.
    blocked: int
    #: ``(spent, reserved)`` of each slot before this request's reservation.
    used: list[tuple[int, int]]


@runtime_checkable
class SpendCounters(Protocol):
    """Where counters live. Raise :class:`~akgate.auth.KeyStoreUnavailable` when down (503)."""

    async def reserve(self, slots: Sequence[Slot]) -> Admission: ...

    async def settle(self, slots: Sequence[Slot], actual: Sequence[int]) -> None:
        """Release each slot's reservation and add ``actual[i]`` to its spend."""
        ...

    async def read(self, keys: Sequence[str]) -> list[tuple[int, int]]: ...


class MemorySpendCounters:
    """Counters in this process (one worker). No await between check and reserve: exact."""

    def __init__(self, *, clock: Callable[[], float] = time.time, max_keys: int = 100_000) -> None:
        self.clock = clock
        self.max_keys = max_keys
        # key -> [spent, reserved, expires_at (whole epoch seconds)], all ints.
        self._counters: dict[str, list[int]] = {}

    def __repr__(self) -> str:
        return f"MemorySpendCounters({len(self._counters)} counters)"

    def _new(self, slot: Slot) -> list[int]:
        if len(self._counters) >= self.max_keys:
            self._prune()
        counter = self._counters[slot.key] = [0, 0, math.ceil(slot.expires_at)]
        return counter

    def _prune(self) -> None:
        now = self.clock()
        for key in [k for k, c in self._counters.items() if c[2] < now]:
            del self._counters[key]

    async def reserve(self, slots: Sequence[Slot]) -> Admission:
        table = self._counters
        counters = []
        used = []
        blocked = -1
        for i, slot in enumerate(slots):
            counter = table.get(slot.key) or self._new(slot)
            counters.append(counter)
            spent, reserved = counter[0], counter[1]
            used.append((spent, reserved))
            if blocked < 0 and slot.enforce and spent + reserved >= slot.limit:
                blocked = i
        if blocked < 0:
            for slot, counter in zip(slots, counters, strict=True):
                counter[1] += slot.amount
        return Admission(blocked, used)

    async def settle(self, slots: Sequence[Slot], actual: Sequence[int]) -> None:
        table = self._counters
        for slot, amount in zip(slots, actual, strict=True):
            counter = table.get(slot.key) or self._new(slot)
            left = counter[1] - slot.amount
            counter[1] = left if left > 0 else 0
            counter[0] += amount

    async def read(self, keys: Sequence[str]) -> list[tuple[int, int]]:
        result = []
        for key in keys:
            counter = self._counters.get(key)
            result.append((0, 0) if counter is None else (counter[0], counter[1]))
        return result


# ARGV per slot: limit, enforce (1/0), ttl in ms, amount. Returns {blocked, s1, r1, s2, r2...}.
_RESERVE_SCRIPT: Final = """
local blocked = -1
local out = {0}
for i = 1, #KEYS do
  local v = redis.call('HMGET', KEYS[i], 's', 'r')
  local s = v[1] or '0'
  local r = v[2] or '0'
  out[2 * i] = s
  out[2 * i + 1] = r
  local base = (i - 1) * 4
  local full = tonumber(s) + tonumber(r) >= tonumber(ARGV[base + 1])
  if blocked < 0 and ARGV[base + 2] == '1' and full then
    blocked = i - 1
  end
end
if blocked < 0 then
  for i = 1, #KEYS do
    local base = (i - 1) * 4
    redis.call('HINCRBY', KEYS[i], 'r', ARGV[base + 4])
    redis.call('PEXPIRE', KEYS[i], ARGV[base + 3])
  end
end
out[1] = blocked
return out
"""


# ARGV per slot: minus the reserved amount (to release it), the actual amount to add.
_SETTLE_SCRIPT: Final = """
for i = 1, #KEYS do
  redis.call('HINCRBY', KEYS[i], 'r', ARGV[2 * i - 1])
  redis.call('HINCRBY', KEYS[i], 's', ARGV[2 * i])
end
return 0
"""


class RedisSpendCounters:
    """Counters in Redis, shared by every worker and host: admission is one atomic round trip
    (a Lua script that checks and reserves every counter of the request), settlement one more
    (a second script that releases the reservation and adds the real amount)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        prefix: str = "akgate:spend:",
        timeout: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if (url is None) == (client is None):
            raise ValueError("give exactly one of url or client")
        self.client: Any = (
            client if client is not None else connect_redis(url or "", timeout=timeout)
        )
        self._owns_client = client is None
        self.prefix = prefix
        self.clock = clock
        self._errors = redis_errors()
        self._script = self.client.register_script(_RESERVE_SCRIPT)
        self._settle = self.client.register_script(_SETTLE_SCRIPT)

    def __repr__(self) -> str:
        return f"RedisSpendCounters(prefix={self.prefix!r})"

    def _unavailable(self, exc: BaseException) -> KeyStoreUnavailable:
        return KeyStoreUnavailable(f"Redis spend counters are unavailable ({type(exc).__name__})")

    async def reserve(self, slots: Sequence[Slot]) -> Admission:
        now = self.clock()
        args: list[Any] = []
        for slot in slots:
            ttl_ms = max(1000, math.ceil((slot.expires_at - now + 3600) * 1000))
            args += [slot.limit, 1 if slot.enforce else 0, ttl_ms, slot.amount]
        try:
            raw = await self._script(keys=[self.prefix + s.key for s in slots], args=args)
        except self._errors as exc:
            raise self._unavailable(exc) from exc
        used = [(int(raw[i]), int(raw[i + 1])) for i in range(1, len(raw), 2)]
        return Admission(int(raw[0]), used)

    async def settle(self, slots: Sequence[Slot], actual: Sequence[int]) -> None:
        args: list[int] = []
        for slot, amount in zip(slots, actual, strict=True):
            args += [-slot.amount, amount]
        try:
            await self._settle(keys=[self.prefix + s.key for s in slots], args=args)
        except self._errors as exc:
            raise self._unavailable(exc) from exc

    async def read(self, keys: Sequence[str]) -> list[tuple[int, int]]:
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hmget(self.prefix + key, "s", "r")
                rows = await pipe.execute()
        except self._errors as exc:
            raise self._unavailable(exc) from exc
        return [(int(s or 0), int(r or 0)) for s, r in rows]

    async def aclose(self) -> None:
        if self._owns_client:
            try:
                await self.client.aclose()
            except self._errors:  # pragma: no cover
                pass
