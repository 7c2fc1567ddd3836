"""Stateful Responses benchmark: the cost of storing a turn and of resolving a chain.

Run: ``python benchmarks/bench_state.py [--n 300] [--redis redis://127.0.0.1:6379/0]``
(without ``--redis`` a throw-away ``redis-server`` is started when one is installed).

``ResponsesAdapter(app, store=...)`` over a canned chat-completions app, called in-process.
For each backend (memory, SQLite, Redis) it measures, in one run:

* ``store: false`` (the store is not touched) against ``store: true`` (one record saved per
  turn): the added latency and process CPU per stored turn (CPU from ``/proc/self/stat``, so the
  SQLite worker threads count);
* the same for a streamed turn (20 text deltas: the capture's per-chunk cost is in there);
* a turn with ``previous_response_id`` at the end of a chain of 1, 5, 10 and 20 turns, against a
  plain stored turn: chain resolution, which should grow linearly with the chain;
* the store round trips per request (Redis commands, pipelines counted once).

Targets (issue 16): <= 150 us added per stored turn on SQLite, <= 1 Redis round trip per read,
chain resolution linear in the chain length.

``--baseline REF`` (a git ref, e.g. ``main``) compares the store with the one of REF in the same
run: for each backend, two worker processes (REF's ``middleware/`` and this tree's) are set up
alike, then take turns, one round each, and the best round of each counts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import IO, Any

# A worker is started with the package to measure on PYTHONPATH (another tree's, for
# --baseline): this tree's then goes last, behind it, for the benchmark's own imports only.
sys.path.insert(
    len(sys.path) if os.environ.get("BENCH_STATE_WORKER") else 0,
    str(Path(__file__).resolve().parents[1] / "middleware"),
)

from _harness import call_once, json_app, make_scope, stream_app

from akgate import __file__ as akgate_file
from akgate.adapter import ResponsesAdapter
from akgate.store import (
    MemoryResponseStore,
    RedisResponseStore,
    ResponseStore,
    SQLiteResponseStore,
)

ROOT = Path(__file__).resolve().parents[1]

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


#: A streamed answer: the role, 20 text deltas, the finish reason, the usage, [DONE].
FRAMES = [
    b"data: "
    + json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
    ).encode()
    + b"\n\n"
    for delta, finish, extra in [
        ({"role": "assistant", "content": ""}, None, {}),
        *[({"content": f"word{i} "}, None, {}) for i in range(20)],
        ({}, "stop", {}),
    ]
] + [
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[],"usage":{"prompt_tokens":20,"completion_tokens":20,"total_tokens":40}}\n\n',
    b"data: [DONE]\n\n",
]

json_answer = json_app(CHAT)
stream_answer = stream_app(FRAMES)


async def chat_app(scope: Any, receive: Any, send: Any) -> None:
    """The JSON answer, or the streamed one when the chat request asks for a stream."""
    body = (await receive()).get("body", b"")
    app = stream_answer if b'"stream":true' in body else json_answer
    await app(scope, replay(body, receive), send)


def replay(body: bytes, receive: Any) -> Any:
    sent = False

    async def again() -> Any:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again


def cpu_seconds() -> float:
    """CPU time of every thread of this process, the store's threads too, including threads
    that ended meanwhile (``CLOCK_PROCESS_CPUTIME_ID``, nanoseconds; summing
    ``/proc/self/task/*`` loses an ended thread's time, and ``/proc/self/stat`` counts 10 ms
    ticks)."""
    return time.process_time()


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


async def warm_up(app: Any, payloads: dict[str, bytes], n: int) -> None:
    for payload in payloads.values():
        scope = make_scope("/v1/responses", payload)
        for _ in range(max(n // 10, 5)):
            await call_once(app, scope, payload)
            await asyncio.sleep(0)


async def one_round(app: Any, payloads: dict[str, bytes], n: int) -> dict[str, tuple[float, float]]:
    """(latency us, CPU us) per request for each payload, the variants one after the other."""
    result = {}
    for key, payload in payloads.items():
        scope = make_scope("/v1/responses", payload)
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        for _ in range(n):
            await call_once(app, scope, payload)
            # The loop runs between requests, as a server's does: tasks a request cancelled
            # finish here instead of piling up for the garbage collector.
            await asyncio.sleep(0)
        result[key] = ((time.perf_counter() - t0) / n * 1e6, (cpu_seconds() - cpu0) / n * 1e6)
    return result


def keep_best(best: dict[str, tuple[float, float]], result: dict[str, tuple[float, float]]) -> None:
    for key, (wall, cpu) in result.items():
        old = best.get(key, (float("inf"), float("inf")))
        best[key] = (min(old[0], wall), min(old[1], cpu))


async def measure(
    app: Any, payloads: dict[str, bytes], *, n: int, rounds: int
) -> dict[str, tuple[float, float]]:
    """Best-of-rounds (latency us, CPU us) per request for each payload; the variants take
    turns in every round, so a load change on a shared machine hits them alike."""
    await warm_up(app, payloads, n)
    best: dict[str, tuple[float, float]] = {}
    for _ in range(rounds):
        keep_best(best, await one_round(app, payloads, n))
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


CHAINS = (1, 5, 10, 20)


async def setup(store: ResponseStore) -> tuple[Any, dict[str, bytes]]:
    """The app over ``store`` and the request variants (chains of every length built)."""
    app = ResponsesAdapter(chat_app, store=store)
    heads = {length: await build_chain(app, length) for length in CHAINS}
    variants = {"off": body(store=False), "on": body()}
    variants.update(stream_off=body(store=False, stream=True), stream_on=body(stream=True))
    variants.update({f"chain{k}": body(previous_response_id=h) for k, h in heads.items()})
    return app, variants


def report(name: str, result: dict[str, tuple[float, float]]) -> list[str]:
    off, on = result["off"], result["on"]
    s_off, s_on = result["stream_off"], result["stream_on"]
    return [
        f"{name:7} store:false {off[0]:7.1f} us ({off[1]:6.1f} CPU)   store:true {on[0]:7.1f} us "
        f"({on[1]:6.1f} CPU)   added per stored turn {on[0] - off[0]:6.1f} us "
        f"({on[1] - off[1]:6.1f} CPU)   ratio {on[0] / off[0]:.2f}x",
        f"{'':7} streamed ({len(FRAMES)} chunks): store:false {s_off[0]:7.1f} us "
        f"({s_off[1]:6.1f} CPU)   store:true {s_on[0]:7.1f} us ({s_on[1]:6.1f} CPU)   "
        f"added per stored turn {s_on[0] - s_off[0]:6.1f} us ({s_on[1] - s_off[1]:6.1f} CPU)",
        f"{'':7} chain resolution, added to a stored turn: "
        + "   ".join(
            f"{k} turns {result[f'chain{k}'][0] - on[0]:6.1f} us "
            f"({result[f'chain{k}'][1] - on[1]:6.1f} CPU)"
            for k in CHAINS
        ),
    ]


async def run_backend(name: str, store: ResponseStore, n: int, rounds: int) -> list[str]:
    trips = RoundTrips(store.client) if isinstance(store, RedisResponseStore) else None
    app, variants = await setup(store)
    lines = report(name, await measure(app, variants, n=n, rounds=rounds))
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
        for name in ("memory", "sqlite", "redis") if redis_url else ("memory", "sqlite"):
            for line in await run_backend(name, open_store(name, tmp, redis_url), n, rounds):
                print(line)
            # The records of one backend must not stay alive (in memory, or as the garbage
            # collector's work) while the next one is measured.
            gc.collect()


def open_store(name: str, tmp: str, redis_url: str | None) -> ResponseStore:
    if name == "memory":
        return MemoryResponseStore()
    if name == "sqlite":
        return SQLiteResponseStore(Path(tmp) / "r.sqlite3")
    assert redis_url is not None
    return RedisResponseStore(redis_url, prefix=f"bench{os.getpid()}:")  # workers apart


async def worker(name: str, n: int, redis_url: str | None) -> None:
    """``--worker``: set up, then one round per line read from stdin, as JSON on stdout."""
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(name, tmp, redis_url)
        app, variants = await setup(store)
        await warm_up(app, variants, n)
        print(f"ready {Path(akgate_file).parents[1]}", flush=True)
        while sys.stdin.readline():
            print(json.dumps(await one_round(app, variants, n)), flush=True)
        await app.aclose()
        await store.aclose()


def extract(ref: str, into: Path) -> Path:
    """``middleware/`` of git ref ``ref``, unpacked into ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref, "middleware"],
        check=True,
        capture_output=True,
    ).stdout
    tar_path = into / "baseline.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into, filter="data")
    return into / "middleware"


def start_worker(middleware: Path, name: str, n: int, redis_url: str | None) -> Any:
    env = {**os.environ, "PYTHONPATH": str(middleware), "BENCH_STATE_WORKER": "1"}
    command = [sys.executable, __file__, "--worker", name, "--n", str(n)]
    if redis_url:
        command += ["--redis", redis_url]
    process = subprocess.Popen(
        command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    if process.stdout.readline().strip() != f"ready {middleware}":
        raise RuntimeError(f"the {name} worker did not start on {middleware}")
    return process


def ask(process: Any) -> dict[str, tuple[float, float]]:
    stdin: IO[str] = process.stdin
    stdin.write("round\n")
    stdin.flush()
    return {k: (v[0], v[1]) for k, v in json.loads(process.stdout.readline()).items()}


def compare(ref: str, n: int, rounds: int, redis_url: str | None, backends: list[str]) -> None:
    print(
        f"python {sys.version.split()[0]}, {n} requests x best of {rounds} rounds, "
        f"{ref} and this tree taking turns; load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        trees = {ref: extract(ref, Path(tmp)), "this tree": ROOT / "middleware"}
        for name in backends:
            if name == "redis" and not redis_url:
                continue
            workers = {
                label: start_worker(path, name, n, redis_url) for label, path in trees.items()
            }
            best: dict[str, dict[str, tuple[float, float]]] = {label: {} for label in trees}
            try:
                for _ in range(rounds):
                    for label, process in workers.items():
                        keep_best(best[label], ask(process))
            finally:
                for process in workers.values():
                    process.stdin.close()
                    process.wait()
                    process.stdout.close()
            for label in trees:
                print(f"[{label}]")
                for line in report(name, best[label]):
                    print(line)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="requests per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--redis", metavar="URL", help="a Redis to use (default: start one)")
    parser.add_argument("--quick", action="store_true", help="tiny counts (a smoke run)")
    parser.add_argument("--baseline", metavar="REF", help="compare with git ref REF's store")
    parser.add_argument(
        "--backends", default="memory,sqlite,redis", help="with --baseline: which to compare"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    n, rounds = (5, 1) if args.quick else (args.n, args.rounds)
    if args.worker:
        asyncio.run(worker(args.worker, n, args.redis))
        return 0
    started = None if args.redis else start_redis()
    url = args.redis or (started[1] if started else None)
    try:
        if args.baseline:
            compare(args.baseline, n, rounds, url, args.backends.split(","))
        else:
            asyncio.run(main_async(n, rounds, url))
    finally:
        if started is not None:
            started[0].terminate()
            started[0].wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
