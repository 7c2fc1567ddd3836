"""Stateful Responses benchmark: the cost of storing a turn and of resolving a chain.

Run: ``python benchmarks/bench_state.py [--n 300] [--redis redis://127.0.0.1:6379/0]``
(without ``--redis`` a throw-away ``redis-server`` is started when one is installed).

``ResponsesAdapter(app, store=...)`` over a canned chat-completions app, called in-process.
For each backend (memory, SQLite, Redis) it measures, in one run:

* ``store: false`` (the store is not touched) against ``store: true`` (one record saved per
  turn): the added latency and process CPU per stored turn (CPU from ``/proc/self/stat``, so the
  SQLite worker threads count);
* a turn with ``previous_response_id`` at the end of a chain of 1, 5, 10 and 20 turns, against a
  plain stored turn: chain resolution, which should grow linearly with the chain;
* the store round trips per request (Redis commands, pipelines counted once).

Targets (issue 16): <= 150 us added per stored turn on SQLite, <= 1 Redis round trip per read,
chain resolution linear in the chain length.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "middleware"))

from _harness import call_once, json_app, make_scope

from akgate.adapter import ResponsesAdapter
from akgate.store import (
    MemoryResponseStore,
    RedisResponseStore,
    ResponseStore,
    SQLiteResponseStore,
)

CHAT = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "A short answer of a few words."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28},
    }
).encode()


chat_app = json_app(CHAT)


def cpu_seconds() -> float:
    """CPU time of every thread of this process (the SQLite worker threads too), from
    ``/proc/self/task/*/schedstat`` (nanoseconds; ``/proc/self/stat`` counts 10 ms ticks)."""
    total = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/schedstat", "rb") as stat:
                total += int(stat.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that just ended
    return total / 1e9


class RoundTrips:
    """Counts Redis commands sent by a ``redis.asyncio`` client (a pipeline counts once)."""

    def __init__(self, client: Any) -> None:
        self.count = 0
        original = client.execute_command
        pipeline = client.pipeline

        async def execute_command(*args: Any, **options: Any) -> Any:
            self.count += 1
            return await original(*args, **options)

        def counted_pipeline(*args: Any, **options: Any) -> Any:
            pipe = pipeline(*args, **options)
            run = pipe.execute

            async def execute(*a: Any, **o: Any) -> Any:
                self.count += 1
                return await run(*a, **o)

            pipe.execute = execute
            return pipe

        client.execute_command = execute_command
        client.pipeline = counted_pipeline


def body(**fields: Any) -> bytes:
    return json.dumps({"model": "m", "input": "What is the answer?", **fields}).encode()


async def measure(
    app: Any, payloads: dict[str, bytes], *, n: int, rounds: int
) -> dict[str, tuple[float, float]]:
    """Best-of-rounds (latency us, CPU us) per request for each payload; the variants take
    turns in every round, so a load change on a shared machine hits them alike."""
    scopes = {k: make_scope("/v1/responses", v) for k, v in payloads.items()}
    for key, payload in payloads.items():
        for _ in range(max(n // 10, 5)):
            await call_once(app, scopes[key], payload)
    best = {k: (float("inf"), float("inf")) for k in payloads}
    for _ in range(rounds):
        for key, payload in payloads.items():
            scope = scopes[key]
            cpu0, t0 = cpu_seconds(), time.perf_counter()
            for _ in range(n):
                await call_once(app, scope, payload)
            wall = (time.perf_counter() - t0) / n * 1e6
            cpu = (cpu_seconds() - cpu0) / n * 1e6
            best[key] = (min(best[key][0], wall), min(best[key][1], cpu))
    return best


async def build_chain(app: Any, length: int) -> str:
    previous: str | None = None
    for i in range(length):
        fields: dict[str, Any] = {"input": f"turn {i}"}
        if previous:
            fields["previous_response_id"] = previous
        payload = body(**fields)
        result = await call_once(app, make_scope("/v1/responses", payload), payload)
        assert result.status == 200, result.body
        previous = json.loads(result.body)["id"]
    assert previous is not None
    return previous


async def run_backend(name: str, store: ResponseStore, n: int, rounds: int) -> list[str]:
    app = ResponsesAdapter(chat_app, store=store)
    trips = RoundTrips(store.client) if isinstance(store, RedisResponseStore) else None
    lines = []
    heads = {length: await build_chain(app, length) for length in (1, 5, 10, 20)}
    variants = {"off": body(store=False), "on": body()}
    variants.update({f"chain{k}": body(previous_response_id=h) for k, h in heads.items()})
    result = await measure(app, variants, n=n, rounds=rounds)
    off, on = result["off"], result["on"]
    lines.append(
        f"{name:7} store:false {off[0]:7.1f} us ({off[1]:6.1f} CPU)   store:true {on[0]:7.1f} us "
        f"({on[1]:6.1f} CPU)   added per stored turn {on[0] - off[0]:6.1f} us "
        f"({on[1] - off[1]:6.1f} CPU)   ratio {on[0] / off[0]:.2f}x"
    )
    lines.append(
        f"{'':7} chain resolution, added to a stored turn: "
        + "   ".join(
            f"{k} turns {result[f'chain{k}'][0] - on[0]:6.1f} us "
            f"({result[f'chain{k}'][1] - on[1]:6.1f} CPU)"
            for k in heads
        )
    )
    if trips is not None:
        trips.count = 0
        payload = variants["chain10"]
        await call_once(app, make_scope("/v1/responses", payload), payload)
        chain_trips = trips.count
    if trips is not None:
        trips.count = 0
        payload = body(store=False)
        await call_once(app, make_scope("/v1/responses", payload), payload)
        off_trips = trips.count
        trips.count = 0
        payload = body()
        await call_once(app, make_scope("/v1/responses", payload), payload)
        on_trips = trips.count
        lines.append(
            f"{'':7} Redis round trips: store:false {off_trips}, store:true {on_trips} "
            f"(one pipelined save), 10-turn chain {chain_trips} (1 GET + 1 MGET, then the save)"
        )
    await app.aclose()
    await store.aclose()
    return lines


def start_redis() -> tuple[subprocess.Popen[bytes], str] | None:
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.02)
    process.kill()
    return None


async def main_async(n: int, rounds: int, redis_url: str | None) -> None:
    print(f"python {sys.version.split()[0]}, {n} requests x best of {rounds} rounds")
    with tempfile.TemporaryDirectory() as tmp:
        backends: list[tuple[str, ResponseStore]] = [
            ("memory", MemoryResponseStore()),
            ("sqlite", SQLiteResponseStore(Path(tmp) / "r.sqlite3")),
        ]
        if redis_url:
            backends.append(("redis", RedisResponseStore(redis_url, prefix="bench:")))
        for name, store in backends:
            for line in await run_backend(name, store, n, rounds):
                print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="requests per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--redis", metavar="URL", help="a Redis to use (default: start one)")
    parser.add_argument("--quick", action="store_true", help="tiny counts (a smoke run)")
    args = parser.parse_args(argv)
    n, rounds = (5, 1) if args.quick else (args.n, args.rounds)
    started = None if args.redis else start_redis()
    url = args.redis or (started[1] if started else None)
    try:
        asyncio.run(main_async(n, rounds, url))
    finally:
        if started is not None:
            started[0].terminate()
            started[0].wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
