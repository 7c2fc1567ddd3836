"""Spend limits read from a SQL store: when a scope's cache entry expires, the requests in flight
share one database read (one thread hop), and a failed read answers them all at once."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from akgate.usage import Limits, SQLiteUsageStore, UsageStoreError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _counting(store: SQLiteUsageStore, *, fail_first: bool = False) -> list[str]:
    """Count the store's database reads of limits (each is a thread hop); slow enough that
    concurrent lookups overlap it."""
    original = store.get_limits_sync
    reads: list[str] = []
    lock = threading.Lock()

    def counted(scope: Any, scope_id: str) -> Limits | None:
        with lock:
            reads.append(f"{scope}:{scope_id}")
            first = len(reads) == 1
        time.sleep(0.05)
        if fail_first and first:
            raise UsageStoreError("SQLite usage store is unavailable (OperationalError)")
        return original(scope, scope_id)

    store.get_limits_sync = counted  # type: ignore[method-assign]
    return reads


async def test_concurrent_misses_share_one_read(tmp_path: Path) -> None:
    clock = Clock()
    store = SQLiteUsageStore(tmp_path / "usage.sqlite3", clock=clock)
    store.set_limits_sync("api_key", "key_a", Limits.of(daily=5.0))
    reads = _counting(store)
    lookups = [store.get_limits("api_key", "key_a") for _ in range(16)]
    lookups.append(store.get_limits("workspace", "ws"))
    results = await asyncio.gather(*lookups)
    assert sorted(reads) == ["api_key:key_a", "workspace:ws"]
    assert results[:16] == [Limits.of(daily=5.0)] * 16
    assert results[16] is None
    # Cached until the TTL, read once more after it.
    await store.get_limits("api_key", "key_a")
    assert len(reads) == 2
    clock.now += 3
    await asyncio.gather(*(store.get_limits("api_key", "key_a") for _ in range(4)))
    assert len(reads) == 3
    store.close()


async def test_a_failed_shared_read_fails_its_waiters_at_once(tmp_path: Path) -> None:
    store = SQLiteUsageStore(tmp_path / "usage.sqlite3")
    store.set_limits_sync("api_key", "key_a", Limits.of(daily=5.0))
    reads = _counting(store, fail_first=True)
    outcomes = await asyncio.gather(
        *(store.get_limits("api_key", "key_a") for _ in range(4)), return_exceptions=True
    )
    assert all(isinstance(o, UsageStoreError) for o in outcomes)
    assert len(reads) == 1  # one read failed, and answered all four
    assert await store.get_limits("api_key", "key_a") == Limits.of(daily=5.0)  # reads again
    assert len(reads) == 2
    store.close()


async def test_a_cancelled_reader_hands_the_read_to_a_waiter(tmp_path: Path) -> None:
    store = SQLiteUsageStore(tmp_path / "usage.sqlite3")
    store.set_limits_sync("api_key", "key_a", Limits.of(daily=5.0))
    reads = _counting(store)
    first = asyncio.ensure_future(store.get_limits("api_key", "key_a"))
    await asyncio.sleep(0.01)  # the first lookup is reading
    waiters = [asyncio.ensure_future(store.get_limits("api_key", "key_a")) for _ in range(3)]
    await asyncio.sleep(0.01)
    first.cancel()
    assert await asyncio.gather(*waiters) == [Limits.of(daily=5.0)] * 3
    with pytest.raises(asyncio.CancelledError):
        await first
    assert len(reads) == 2  # the cancelled read, then one for the three waiters
    store.close()


async def test_without_a_cache_every_lookup_reads(tmp_path: Path) -> None:
    store = SQLiteUsageStore(tmp_path / "usage.sqlite3", cache_ttl=0)
    reads = _counting(store)
    await asyncio.gather(*(store.get_limits("api_key", "key_a") for _ in range(3)))
    assert len(reads) == 3
    store.close()
