"""A separate process hammering one key through APIKeyAuth + RedisRateLimiter.

argv: redis_url key now count. Prints {"200": n, "429": m}.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

import anyio
import httpx

from akgate.auth import APIKeyAuth, MemoryKeyStore, RedisRateLimiter
from tests.auth.conftest import inner_app


async def main(url: str, key: str, now: float, count: int) -> None:
    store = MemoryKeyStore.from_keys({key: {"rate_limit_rpm": 25}})
    limiter = RedisRateLimiter(url, clock=lambda: now)
    app = APIKeyAuth(inner_app, store=store, limiter=limiter, clock=lambda: now)
    statuses: Counter[str] = Counter({"200": 0, "429": 0})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://w") as client:

        async def one() -> None:
            r = await client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
            statuses[str(r.status_code)] += 1

        async with anyio.create_task_group() as tg:
            for _ in range(count):
                tg.start_soon(one)
    await limiter.aclose()
    print(json.dumps(statuses))


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
