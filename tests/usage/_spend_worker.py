"""A separate process sending streams through the gateway with Redis spend counters.

argv: redis_url key now count limit. Prints {"statuses": [...], "costs": [...]}.
"""

from __future__ import annotations

import json
import sys

import anyio
import httpx

from akgate import Catalog, DemoModel, gateway
from akgate.auth import MemoryKeyStore
from akgate.auth._keys import key_id_of
from akgate.usage import (
    Limits,
    MemoryLedgerBackend,
    MemoryLimitStore,
    RedisSpendCounters,
    UsageLedger,
)


async def main(url: str, key: str, now: float, count: int, limit: float) -> None:
    counters = RedisSpendCounters(url, clock=lambda: now)
    backend = MemoryLedgerBackend()
    ledger = UsageLedger(backend)
    app = gateway(
        DemoModel(token_delay=0.002),
        keys=MemoryKeyStore.from_keys({key: {"workspace_id": "ws1"}}),
        catalog=Catalog.demo(),
        app_provider="demo",
        spend_options={
            "ledger": ledger,
            "limits": MemoryLimitStore(keys={key_id_of(key): Limits.of(daily=limit)}),
            "counters": counters,
            "clock": lambda: now,
        },
    )
    body = json.dumps(
        {
            "model": "demo",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 20,
            "stream": True,
        },
        separators=(",", ":"),
    )
    statuses: list[int] = []
    transport = httpx.ASGITransport(app=app)
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    async with httpx.AsyncClient(transport=transport, base_url="http://w", headers=headers) as c:

        async def one() -> None:
            r = await c.post("/v1/chat/completions", content=body)
            statuses.append(r.status_code)

        async with anyio.create_task_group() as tg:
            for _ in range(count):
                tg.start_soon(one)
    ledger.close()
    await counters.aclose()
    print(json.dumps({"statuses": statuses, "costs": [r.cost_usd for r in backend.records]}))


if __name__ == "__main__":
    anyio.run(
        main, sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    )
