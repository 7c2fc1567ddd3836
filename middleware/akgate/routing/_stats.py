"""Observed latency per provider x model: TTFT and throughput percentiles from real traffic.

:class:`InMemoryStats` serves one process; :class:`RedisStats` shares samples between workers
and machines (a capped Redis list per series, read back through a short local cache so that the
request path rarely waits for Redis). Stats are advisory: a Redis outage never fails a request.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

from akgate.auth._redis import connect_redis

__all__ = ["InMemoryStats", "Perf", "RedisStats", "RoutingStats", "StatsKey", "percentile"]

logger = logging.getLogger("akgate.routing")

StatsKey = tuple[str, str]
"""``(provider name, canonical model id)``."""


class Perf(NamedTuple):
    """Percentiles of one provider x model (``None``: no samples yet)."""

    ttft_p50: float | None = None
    ttft_p95: float | None = None
    tps_p50: float | None = None
    tps_p95: float | None = None
    samples: int = 0

    def ttft(self, percentile: str) -> float | None:
        return self.ttft_p95 if percentile == "p95" else self.ttft_p50

    def tps(self, percentile: str) -> float | None:
        return self.tps_p95 if percentile == "p95" else self.tps_p50


EMPTY_PERF = Perf()


@runtime_checkable
class RoutingStats(Protocol):
    """Where routing records and reads observed performance."""

    async def snapshot(self, keys: Sequence[StatsKey]) -> Mapping[StatsKey, Perf]:
        """Current percentiles for ``keys`` (missing keys: no data)."""
        ...

    async def record(
        self, provider: str, model: str, *, ttft_ms: float | None, tps: float | None
    ) -> None:
        """Add one successful request's measurements."""
        ...


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values (``p`` in 0..1)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p * len(sorted_values)))
    return sorted_values[rank - 1]


def _perf(ttft: Sequence[float], tps: Sequence[float]) -> Perf:
    st, sp = sorted(ttft), sorted(tps)
    return Perf(
        percentile(st, 0.5),
        percentile(st, 0.95),
        percentile(sp, 0.5),
        percentile(sp, 0.95),
        max(len(st), len(sp)),
    )


class _Series:
    __slots__ = ("perf", "tps", "ttft")

    def __init__(self, window: int) -> None:
        self.ttft: deque[float] = deque(maxlen=window)
        self.tps: deque[float] = deque(maxlen=window)
        self.perf: Perf | None = None  # cached until the next sample


class InMemoryStats:
    """Per-process stats over the last ``window`` samples of each series."""

    def __init__(self, *, window: int = 256) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self.window = window
        self._series: dict[StatsKey, _Series] = {}

    def get(self, provider: str, model: str) -> Perf:
        series = self._series.get((provider, model))
        if series is None:
            return EMPTY_PERF
        if series.perf is None:
            series.perf = _perf(series.ttft, series.tps)
        return series.perf

    async def snapshot(self, keys: Sequence[StatsKey]) -> Mapping[StatsKey, Perf]:
        return {key: self.get(*key) for key in keys if key in self._series}

    async def record(
        self, provider: str, model: str, *, ttft_ms: float | None, tps: float | None
    ) -> None:
        self.add(provider, model, ttft_ms=ttft_ms, tps=tps)

    def add(self, provider: str, model: str, *, ttft_ms: float | None, tps: float | None) -> None:
        """Synchronous :meth:`record` (handy for seeding)."""
        self._add_sample((provider, model), ttft_ms, tps)

    def _add_sample(self, key: StatsKey, ttft_ms: float | None, tps: float | None) -> None:
        """:meth:`add` for the ``(provider, model)`` key routing already holds (``Route.key``),
        positionally: routing records one sample per answered request."""
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(self.window)
        if ttft_ms is not None and math.isfinite(ttft_ms):
            series.ttft.append(float(ttft_ms))
        if tps is not None and math.isfinite(tps):
            series.tps.append(float(tps))
        series.perf = None


class RedisStats:
    """Stats shared through Redis: ``LPUSH`` + ``LTRIM`` per series, cached reads.

    ``redis`` is a URL or a ``redis.asyncio.Redis`` client. Reads are served from a local copy
    that is refreshed at most every ``refresh_seconds`` (``clock`` is injectable for tests).
    """

    def __init__(
        self,
        redis: Any,
        *,
        prefix: str = "akgate:stats",
        window: int = 256,
        refresh_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self._owns_client = isinstance(redis, str)
        if isinstance(redis, str):
            # The keys' connector: short timeouts, so a hung Redis cannot stall routing's plan.
            redis = connect_redis(redis)
        self.redis = redis
        self.prefix = prefix
        self.window = window
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._cache: dict[StatsKey, tuple[float, Perf]] = {}

    def _key(self, provider: str, model: str, series: str) -> str:
        return f"{self.prefix}:{provider}:{model}:{series}"

    async def record(
        self, provider: str, model: str, *, ttft_ms: float | None, tps: float | None
    ) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for series, value in (("ttft", ttft_ms), ("tps", tps)):
                    if value is None or not math.isfinite(value):
                        continue
                    key = self._key(provider, model, series)
                    pipe.lpush(key, repr(float(value)))
                    pipe.ltrim(key, 0, self.window - 1)
                await pipe.execute()
        except Exception as exc:  # advisory data: never fail a request over it
            logger.warning("akgate routing stats: Redis write failed (%s)", type(exc).__name__)
        self._cache.pop((provider, model), None)

    async def snapshot(self, keys: Sequence[StatsKey]) -> Mapping[StatsKey, Perf]:
        now = self.clock()
        result: dict[StatsKey, Perf] = {}
        stale: list[StatsKey] = []
        for key in keys:
            cached = self._cache.get(key)
            if cached is not None and now - cached[0] < self.refresh_seconds:
                if cached[1].samples:
                    result[key] = cached[1]
            else:
                stale.append(key)
        if not stale:
            return result
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for provider, model in stale:
                    pipe.lrange(self._key(provider, model, "ttft"), 0, -1)
                    pipe.lrange(self._key(provider, model, "tps"), 0, -1)
                values = await pipe.execute()
        except Exception as exc:
            logger.warning("akgate routing stats: Redis read failed (%s)", type(exc).__name__)
            for key in stale:  # keep serving what we had
                if key in self._cache and self._cache[key][1].samples:
                    result[key] = self._cache[key][1]
            return result
        for i, key in enumerate(stale):
            perf = _perf([float(v) for v in values[2 * i]], [float(v) for v in values[2 * i + 1]])
            self._cache[key] = (now, perf)
            if perf.samples:
                result[key] = perf
        return result

    async def aclose(self) -> None:
        """Close the connection pool (only of a client created from a URL here)."""
        if self._owns_client:
            await self.redis.aclose()
