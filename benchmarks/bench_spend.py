"""Added cost per request of the spend layer (usage ledger + budget and tpm checks).

Run from the repository root::

    python benchmarks/bench_spend.py [--n 5000] [--rounds 5] [--redis URL]

An outer layer does what ``APIKeyAuth`` does before the spend layer (the request context, the
caller's identity, the route resolved once and cached on the context) and the inner app does what
validation and routing do after it (it reads the parsed request, parsing it when no layer did,
then leaves ``routing_metadata`` and usage behind), so the variants differ only by what the spend
layer adds. Latency is the best of ``rounds`` rounds of ``n`` sequential requests; ``cpu us`` is
the whole process's CPU (the ledger's writer thread included) from ``/proc/self/stat``, ``path
cpu`` the request path's alone (the event loop's thread, ``time.thread_time``), over the same
rounds: on a shared machine the CPU columns are the ones to read.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "middleware"), str(ROOT), str(ROOT / "benchmarks")]

from _harness import make_scope, timed_requests  # noqa: E402  (benchmarks/)

from akgate._asgi import read_request_json  # noqa: E402
from akgate._endpoints import gateway_scope  # noqa: E402
from akgate.auth import APIKeyAuth, MemoryKeyStore, MemoryRateLimiter, create_key  # noqa: E402
from akgate.context import Identity, request_context  # noqa: E402
from akgate.usage import (  # noqa: E402
    Limits,
    MemoryLedgerBackend,
    MemoryLimitStore,
    MemorySpendCounters,
    RedisSpendCounters,
    SpendControl,
    SQLiteUsageStore,
    UsageLedger,
)

BODY = b'{"model":"demo","messages":[{"role":"user","content":"hi"}],"max_tokens":20}'
RESPONSE = b'{"id":"chatcmpl-1","object":"chat.completion","choices":[]}'
META = {
    "provider": "demo",
    "provider_model_id": "demo",
    "model_canonical": "demo",
    "routing_strategy": "cost-focus",
    "cost": {"usd": 0.000025},
}
USAGE = {"prompt_tokens": 5, "completion_tokens": 15, "total_tokens": 20}
KEY_ID = "ak_live_benchbnc"
IDENTITY = Identity(key_id=KEY_ID, workspace_id="ws")
TICK = os.sysconf("SC_CLK_TCK")


async def priced_app(scope: Any, receive: Any, send: Any) -> None:
    """What validation and routing do: read the parsed request (cached on the context when an
    outer layer parsed it), then leave metadata with the cost, and the provider's usage."""
    ctx = scope["akgate"]
    await read_request_json(scope, receive, ctx)
    ctx.state["routing"] = {"attempts": [], "metadata": META, "usage": USAGE}
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"59")],
        }
    )
    await send({"type": "http.response.body", "body": RESPONSE})


def with_identity(app: Any) -> Callable[..., Awaitable[None]]:
    async def outer(scope: Any, receive: Any, send: Any) -> None:
        scope, send, ctx = request_context(scope, send)
        ctx.identity = IDENTITY
        scope, _ = gateway_scope(scope)  # APIKeyAuth resolves the route (cached on ctx)
        await app(scope, receive, send)

    return outer


def _with_headers(app: Any, headers: list[tuple[bytes, bytes]]) -> Any:
    async def outer(scope: Any, receive: Any, send: Any) -> None:
        await app({**scope, "headers": [*scope["headers"], *headers]}, receive, send)

    return outer


def cpu_seconds() -> float:
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def measure(app: Any, n: int) -> float:
    return await timed_requests(app, make_scope("/v1/chat/completions", BODY), BODY, n)


async def best_of(app: Any, n: int, rounds: int) -> tuple[float, float, float]:
    """(best µs per request, process CPU µs and request-path CPU µs per request over all
    rounds)."""
    await measure(app, max(50, n // 10))
    cpu0, path0 = cpu_seconds(), time.thread_time()
    best = min([await measure(app, n) for _ in range(rounds)])
    per_request = 1e6 / (n * rounds)
    return best, (cpu_seconds() - cpu0) * per_request, (time.thread_time() - path0) * per_request


async def run(args: argparse.Namespace, redis_url: str | None, tmp: Path) -> list[str]:
    big = Limits.of(daily=10**6, monthly=10**7, tpm=10**12)  # never reached
    limits = MemoryLimitStore(keys={KEY_ID: big}, workspaces={"ws": Limits.of(daily=10**6)})
    sqlite = SQLiteUsageStore(tmp / "usage.sqlite3")
    sqlite.set_limits_sync("api_key", KEY_ID, big)
    sqlite.set_limits_sync("workspace", "ws", Limits.of(daily=10**6))
    sqlite_ledger = UsageLedger(sqlite)
    memory_ledger = UsageLedger(MemoryLedgerBackend())
    closers: list[Any] = [sqlite_ledger, memory_ledger]

    def spend(**options: Any) -> Any:
        return with_identity(SpendControl(priced_app, **options))

    # A yardstick measured in the same run: docs/benchmarks.md gives its cost on an idle machine.
    keys = MemoryKeyStore()
    key = (await create_key(keys, name="bench", rate_limit_rpm=10**9)).key
    auth = APIKeyAuth(with_identity(priced_app), store=keys, limiter=MemoryRateLimiter())
    auth_scope_headers = [(b"authorization", b"Bearer " + key.encode())]

    variants: list[tuple[str, Any, int]] = [
        ("baseline: auth's part + validation/routing's part", with_identity(priced_app), args.n),
        (
            "reference: APIKeyAuth, memory store + limiter",
            _with_headers(auth, auth_scope_headers),
            args.n,
        ),
        ("ledger only (memory backend)", spend(ledger=memory_ledger), args.n),
        ("ledger (SQLite, batched)", spend(ledger=sqlite_ledger), args.n),
        (
            "SQLite ledger + SQLite limits + in-process budgets/tpm",
            spend(ledger=sqlite_ledger, limits=sqlite, counters=MemorySpendCounters()),
            args.n,
        ),
        (
            "memory ledger + memory limits + in-process budgets/tpm",
            spend(ledger=memory_ledger, limits=limits, counters=MemorySpendCounters()),
            args.n,
        ),
    ]
    if redis_url:
        counters = RedisSpendCounters(redis_url, prefix="akgate-bench:spend:")
        await counters.client.flushdb()
        closers.append(counters)
        variants.append(
            (
                "SQLite ledger + SQLite limits + Redis budgets/tpm (2 round trips)",
                spend(ledger=sqlite_ledger, limits=sqlite, counters=counters),
                max(200, args.n // 5),
            )
        )
    lines = [
        f"Spend layer in-process cost (best of {args.rounds} rounds; cpu: /proc, all threads; "
        "path cpu: the event loop thread)",
        f"{'variant':68} {'us/req':>8} {'added us':>9} {'ratio':>6} {'cpu us':>7} "
        f"{'path cpu':>8} {'added':>6}",
    ]
    bare = bare_path = 0.0
    for name, app, n in variants:
        us, cpu, path = await best_of(app, n, args.rounds)
        bare, bare_path = bare or us, bare_path or path
        lines.append(
            f"{name:68} {us:8.2f} {us - bare:9.2f} {us / bare:6.2f} {cpu:7.1f} "
            f"{path:8.1f} {path - bare_path:6.1f}"
        )
    if redis_url:
        from akgate.auth._redis import connect_redis

        client = connect_redis(redis_url)
        await client.ping()
        start = time.perf_counter()
        for _ in range(200):
            await client.ping()
        ping = (time.perf_counter() - start) / 200 * 1e6
        await client.aclose()
        lines.append(f"{'reference: one redis PING round trip':68} {ping:8.2f}")
    for closer in closers:
        await closer.aclose()
    lines.append(f"records written to SQLite: {len(sqlite.records())}")
    sqlite.close()
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis", metavar="URL", help="use this Redis instead of starting one")
    parser.add_argument("--no-redis", action="store_true", help="skip the Redis variant")
    args = parser.parse_args(argv)

    server = None
    redis_url = args.redis
    if redis_url is None and not args.no_redis:
        from tests.support.servers import RedisServer, redis_binary

        binary = redis_binary()
        if binary:
            server = RedisServer(binary)
            server.start()
            redis_url = server.url
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print("\n".join(asyncio.run(run(args, redis_url, Path(tmp)))))
    finally:
        if server is not None:
            server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
