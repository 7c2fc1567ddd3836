"""In-process cost of the APIKeyAuth layer per request, for each key store, against the bare app.

Run from the repository root::

    python benchmarks/bench_auth.py [--n 5000] [--rounds 5] [--redis URL] [--uvloop]

Each variant calls ``await app(scope, receive, send)`` ``n`` times after a warm-up, best of
``rounds``; ``receive`` yields a small body and then parks, ``send`` does nothing. A redis-server
is started on 127.0.0.1 when the binary is installed and no ``--redis`` URL is given.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "middleware"), str(ROOT)]

from _harness import make_scope as canned_scope  # noqa: E402  (benchmarks/)
from _harness import timed_requests  # noqa: E402

from akgate.auth import (  # noqa: E402
    APIKeyAuth,
    MemoryKeyStore,
    MemoryRateLimiter,
    RedisKeyStore,
    RedisRateLimiter,
    SQLiteKeyStore,
    create_key,
)

BODY = b'{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'
RESPONSE = b'{"id":"chatcmpl-1","object":"chat.completion","choices":[]}'


async def bare_app(scope: Any, receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if not message.get("more_body"):
            break
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"59")],
        }
    )
    await send({"type": "http.response.body", "body": RESPONSE})


def make_scope(key: str) -> dict[str, Any]:
    return canned_scope(
        "/v1/chat/completions", BODY, headers=[(b"authorization", b"Bearer " + key.encode())]
    )


async def measure(app: Callable[..., Awaitable[None]], scope: dict[str, Any], n: int) -> float:
    return await timed_requests(app, scope, BODY, n)


async def best_of(app: Any, scope: dict[str, Any], n: int, rounds: int) -> float:
    await measure(app, scope, max(50, n // 10))  # warm-up (fills caches, opens connections)
    return min([await measure(app, scope, n) for _ in range(rounds)])


async def redis_ping(url: str, n: int) -> float:
    from akgate.auth._redis import connect_redis

    client = connect_redis(url)
    await client.ping()
    start = time.perf_counter()
    for _ in range(n):
        await client.ping()
    elapsed = (time.perf_counter() - start) / n * 1e6
    await client.aclose()
    return elapsed


async def run(args: argparse.Namespace, redis_url: str | None, tmp: Path) -> None:
    big = 10**9  # a limit never reached: measures the counting, not the 429 path
    memory = MemoryKeyStore()
    key = (await create_key(memory, name="bench", rate_limit_rpm=big)).key
    scope = make_scope(key)
    sqlite = SQLiteKeyStore(tmp / "keys.sqlite3")
    await create_key(sqlite, key=key, name="bench", rate_limit_rpm=big)
    sqlite_nocache = SQLiteKeyStore(tmp / "keys.sqlite3", cache_ttl=0)

    variants: list[tuple[str, Any, int]] = [
        ("bare app", bare_app, args.n),
        ("memory store, no limiter", APIKeyAuth(bare_app, store=memory, limiter=None), args.n),
        (
            "memory store + memory limiter",
            APIKeyAuth(bare_app, store=memory, limiter=MemoryRateLimiter()),
            args.n,
        ),
        (
            "sqlite store (cache hits) + memory limiter",
            APIKeyAuth(bare_app, store=sqlite, limiter=MemoryRateLimiter()),
            args.n,
        ),
        (
            "sqlite store (no cache) + memory limiter",
            APIKeyAuth(bare_app, store=sqlite_nocache, limiter=MemoryRateLimiter()),
            max(200, args.n // 5),
        ),
    ]
    closers: list[Any] = [sqlite, sqlite_nocache]
    if redis_url:
        redis_store = RedisKeyStore(redis_url, prefix="akgate-bench:")
        await redis_store.client.flushdb()
        await create_key(redis_store, key=key, name="bench", rate_limit_rpm=big)
        redis_nocache = RedisKeyStore(redis_url, prefix="akgate-bench:", cache_ttl=0)
        limiter = RedisRateLimiter(redis_url, prefix="akgate-bench:rl:")
        closers += [redis_store, redis_nocache, limiter]
        slow_n = max(200, args.n // 5)
        variants += [
            (
                "redis store (cache hits) + memory limiter",
                APIKeyAuth(bare_app, store=redis_store, limiter=MemoryRateLimiter()),
                args.n,
            ),
            (
                "memory store + redis limiter (1 round trip)",
                APIKeyAuth(bare_app, store=memory, limiter=limiter),
                slow_n,
            ),
            (
                "redis store (cache hits) + redis limiter (1 round trip)",
                APIKeyAuth(bare_app, store=redis_store, limiter=limiter),
                slow_n,
            ),
            (
                "redis store (no cache) + redis limiter (2 round trips)",
                APIKeyAuth(bare_app, store=redis_nocache, limiter=limiter),
                slow_n,
            ),
        ]

    loop = "uvloop" if args.uvloop else "asyncio"
    print(f"APIKeyAuth in-process cost ({loop}, best of {args.rounds} rounds)")
    print(f"{'variant':58} {'us/req':>8} {'added us':>9} {'ratio':>6}")
    bare = 0.0
    for name, app, n in variants:
        us = await best_of(app, scope, n, args.rounds)
        bare = bare or us
        print(f"{name:58} {us:8.2f} {us - bare:9.2f} {us / bare:6.2f}")
    if redis_url:
        ping = await redis_ping(redis_url, max(200, args.n // 5))
        print(f"{'reference: one redis PING round trip':58} {ping:8.2f}")
    for closer in closers:
        await closer.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis", metavar="URL", help="use this Redis instead of starting one")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (if installed)")
    args = parser.parse_args()

    import tempfile

    server = None
    redis_url = args.redis
    if redis_url is None:
        from tests.support.servers import RedisServer, redis_binary

        binary = redis_binary()
        if binary:
            server = RedisServer(binary)
            server.start()
            redis_url = server.url
        else:
            print("redis-server not installed: Redis variants skipped")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if args.uvloop:
                import uvloop

                uvloop.run(run(args, redis_url, Path(tmp)))
            else:
                asyncio.run(run(args, redis_url, Path(tmp)))
    finally:
        if server is not None:
            server.close()


if __name__ == "__main__":
    main()
