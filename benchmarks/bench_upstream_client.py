"""CPU per proxied request of ``UpstreamProvider`` with each HTTP client, side by side.

    python benchmarks/bench_upstream_client.py            # about a minute
    python benchmarks/bench_upstream_client.py --requests 300 --rounds 1

The fixed fake upstream of ``bench_peer.py`` runs in its own process; the provider runs in this
one (uvloop when installed), called as an ASGI app with a canned scope, at concurrency 1 and 32,
for a chat JSON answer and a 20-chunk chat stream. Variants are interleaved round by round and
the best round is kept; the figure is this process's CPU time (user + system) per request, so
the upstream's own work is not in it. Variants:

- ``httpx (before)``: an ``httpx.AsyncClient`` with the options UpstreamProvider used to create
  (20 keep-alive connections of 100), passed as ``client=``;
- ``httpx tuned``: the same with every connection kept alive (``max_keepalive_connections=100``);
- ``aiohttp``: the provider's client for proxied upstreams (its default before the next one);
- ``akgate h1``: the provider's default client for direct connections (httptools installed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "middleware"), str(HERE)]

import httpx  # noqa: E402
from _harness import Parked, make_scope, noop_send  # noqa: E402
from bench_peer import _free_port, _wait_port  # noqa: E402

from akgate.providers import UpstreamProvider  # noqa: E402

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
BODIES = {
    "JSON": json.dumps(CHAT).encode(),
    "stream": json.dumps({**CHAT, "stream": True}).encode(),
}


def _variants(base: str) -> dict[str, Callable[[], UpstreamProvider]]:
    def httpx_client(keepalive: int) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=httpx.Timeout(connect=10, read=120, write=30, pool=10),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=keepalive),
            follow_redirects=False,
            trust_env=False,
        )

    return {
        "httpx (before)": lambda: UpstreamProvider(base, client=httpx_client(20)),
        "httpx tuned": lambda: UpstreamProvider(base, client=httpx_client(100)),
        "aiohttp": lambda: _without_h1(UpstreamProvider(base)),
        "akgate h1": lambda: UpstreamProvider(base),
    }


def _without_h1(provider: UpstreamProvider) -> UpstreamProvider:
    provider.client._h1_unusable = True  # as for a proxied upstream: aiohttp
    return provider


async def _one(app: UpstreamProvider, body: bytes) -> None:
    await app(make_scope("/v1/chat/completions", body), Parked(body), noop_send)


async def _run(app: UpstreamProvider, body: bytes, conc: int, requests: int) -> float:
    async def worker(count: int) -> None:
        for _ in range(count):
            await _one(app, body)

    await asyncio.gather(*(worker(4) for _ in range(conc)))  # warm the pool
    cpu = time.process_time()
    await asyncio.gather(*(worker(requests // conc) for _ in range(conc)))
    return (time.process_time() - cpu) / (requests // conc * conc) * 1e6


async def _bench(base: str, requests: int, rounds: int) -> dict[tuple[str, str, int], float]:
    providers = {name: make() for name, make in _variants(base).items()}
    best: dict[tuple[str, str, int], float] = {}
    try:
        for _ in range(rounds):
            for kind, body in BODIES.items():
                for conc in (1, 32):
                    for name, app in providers.items():
                        us = await _run(app, body, conc, requests)
                        key = (name, kind, conc)
                        best[key] = min(best.get(key, us), us)
    finally:
        for app in providers.values():
            await app.aclose()
            if app.client.httpx_client is not None:
                await app.client.httpx_client.aclose()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1600, help="requests per run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = _free_port()
    upstream = subprocess.Popen(
        [sys.executable, str(HERE / "bench_peer.py"), "--upstream-server", str(port)],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_port(port, upstream)
        try:
            from uvloop import run as run_loop
        except ImportError:
            run_loop = asyncio.run
        best = run_loop(_bench(f"http://127.0.0.1:{port}/v1", args.requests, args.rounds))
    finally:
        upstream.terminate()
        upstream.wait()
    names = list(_variants("http://x/v1"))
    columns = [(kind, conc) for kind in BODIES for conc in (1, 32)]
    print(f"CPU µs per proxied request, best of {args.rounds} interleaved rounds")
    print(
        "| client | " + " | ".join(f"{k} c={c}" for k, c in columns) + " | vs before (JSON c=32) |"
    )
    print("|---|" + "---:|" * (len(columns) + 1))
    before = best[(names[0], "JSON", 32)]
    for name in names:
        cells = " | ".join(f"{best[(name, k, c)]:.0f}" for k, c in columns)
        print(f"| {name} | {cells} | {before / best[(name, 'JSON', 32)]:.1f}x |")


if __name__ == "__main__":
    main()
