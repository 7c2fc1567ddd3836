"""What SSE heartbeats cost: ``gateway(app)`` with and without ``sse_heartbeat``, in one run.

In process (the harness of ``bench_overhead.py``): µs per request and process CPU µs per request
(``/proc/self/stat`` utime + stime, the gateway's own CPU since client and app run in-process
too, read before and after each timed block), for a JSON and a streamed chat request over the
demo model. No heartbeat fires here (nothing is idle): this is the fixed cost of being ready to
send one. Prints ratios measured in the same run.

    python benchmarks/bench_keepalive.py            # about 20 seconds
    python benchmarks/bench_keepalive.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "middleware"))

from _harness import Parked, call_once, make_scope, noop_send

from akgate import Catalog, DemoModel, gateway
from akgate.auth._keys import generate_key

CHAT_PATH = "/v1/chat/completions"
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds() -> float:
    """utime + stime of this process from /proc (falls back to process_time elsewhere)."""
    try:
        with open("/proc/self/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except OSError:
        return time.process_time()


async def measure(app: object, stream: bool, key: str, n: int, rounds: int) -> tuple[float, float]:
    body = json.dumps(
        {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    ).encode()
    scope = make_scope(CHAT_PATH, body, headers=[(b"authorization", b"Bearer " + key.encode())])
    result = await call_once(app, scope, body)  # type: ignore[arg-type]
    if result.status != 200:
        raise SystemExit(f"status {result.status}: {result.body[:200]!r}")
    for _ in range(max(n // 10, 20)):
        await app(dict(scope), Parked(body), noop_send)  # type: ignore[operator]
        await asyncio.sleep(0)  # the loop runs between requests, as a server's does
    best_wall, best_cpu = float("inf"), float("inf")
    for _ in range(rounds):
        cpu0, t0 = _cpu_seconds(), time.perf_counter()
        for _ in range(n):
            await app(dict(scope), Parked(body), noop_send)  # type: ignore[operator]
            await asyncio.sleep(0)
        best_wall = min(best_wall, (time.perf_counter() - t0) / n)
        best_cpu = min(best_cpu, (_cpu_seconds() - cpu0) / n)
    return best_wall * 1e6, best_cpu * 1e6


async def run(n: int, rounds: int) -> list[tuple[str, str, float, float]]:
    key = generate_key("live")[0]
    rows = []
    for label, heartbeat in (("sse_heartbeat=None", None), ("sse_heartbeat=15", 15.0)):
        app = gateway(
            DemoModel(token_delay=0),
            keys=[key],
            catalog=Catalog.demo("app"),
            demo=False,
            sse_heartbeat=heartbeat,
        )
        for kind, stream in (("json", False), ("stream", True)):
            wall, cpu = await measure(app, stream, key, n, rounds)
            rows.append((label, kind, wall, cpu))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts (a smoke run)")
    args = parser.parse_args(argv)
    n, rounds = (30, 2) if args.quick else (400, 5)
    rows = asyncio.run(run(n, rounds))
    base = {kind: (wall, cpu) for label, kind, wall, cpu in rows if label == "sse_heartbeat=None"}
    print(f"{'variant':<20} {'request':<7} {'µs/req':>8} {'CPU µs/req':>11} {'ratio':>6}")
    for label, kind, wall, cpu in rows:
        ratio = wall / base[kind][0]
        print(f"{label:<20} {kind:<7} {wall:>8.1f} {cpu:>11.1f} {ratio:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
