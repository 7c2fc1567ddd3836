"""The SQLite response store's writes from the event loop: CPU per stored turn, alone and with
concurrent requests, and the thread hops they take.

Each scenario runs ``concurrency`` tasks on uvloop (asyncio without it); each task does
``passes`` loop passes (a request's other work), then saves one turn, and again. A turn costs
the process CPU of the run (every thread: the store's thread and its checkpoints included) minus
the same run without the saves. ``--baseline DIR`` also runs the store of the akgate package in
``DIR`` (another checkout's ``middleware/``): the two take turns in worker processes, one round
each, and each keeps its best round.

    python benchmarks/bench_store_writes.py [--n 1000] [--rounds 5] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TREE = HERE.parent / "middleware"

#: (name, concurrent requests, loop passes between saves: a number, or "1-20" drawn each time)
SCENARIOS: tuple[tuple[str, int, str], ...] = (
    ("one request at a time", 1, "5"),
    ("8 requests ending together", 8, "5"),
    ("8 requests ending apart", 8, "1-20"),
)


def _record(sequence: int) -> Any:
    from akgate.store import StoredResponse

    rid = f"resp_{time.time_ns():x}{sequence:08d}"
    response = {
        "id": rid,
        "object": "response",
        "status": "completed",
        "output": [
            {
                "id": "msg_" + rid[5:],
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "hello world " * 20}],
            }
        ],
        "routing_metadata": {"attempts": [{"model": "demo", "status": "ok"}] * 8},
    }
    item = {"id": "in_" + rid[5:], "type": "message", "role": "user", "content": "hi"}
    return StoredResponse(
        id=rid, workspace="ws", response=response, input_items=[item], expires_at=9e9
    )


async def _run(store: Any, concurrency: int, passes: str, n: int, save: bool) -> float:
    low, _, high = passes.partition("-")
    counter = iter(range(10**9))

    async def request_loop() -> None:
        for _ in range(n // concurrency):
            for _ in range(random.randint(int(low), int(high)) if high else int(low)):
                await asyncio.sleep(0)
            record = _record(next(counter))
            if save:
                await store.save(record)

    start = time.process_time()
    await asyncio.gather(*(request_loop() for _ in range(concurrency)))
    return (time.process_time() - start) / n * 1e6


async def _scenario(concurrency: int, passes: str, n: int) -> dict[str, float]:
    from akgate.store import SQLiteResponseStore

    with tempfile.TemporaryDirectory() as home:
        store = SQLiteResponseStore(Path(home) / "responses.sqlite3")
        hops = 0
        submit = store._submit

        def counted(func: Any, reply: Any) -> None:
            nonlocal hops
            hops += 1
            submit(func, reply)

        store._submit = counted  # type: ignore[method-assign]
        await _run(store, concurrency, passes, n, True)  # warm-up: file, connections, caches
        hops = 0
        loop_alone = await _run(store, concurrency, passes, n, False)
        with_saves = await _run(store, concurrency, passes, n, True)
        per_turn = hops / n
        await store.aclose()
    return {"cpu": with_saves - loop_alone, "hops": per_turn}


def _worker(n: int) -> None:
    """One round of every scenario, as JSON lines on stdout (run in a worker process)."""
    try:
        import uvloop

        run: Any = uvloop.run
    except ImportError:
        run = asyncio.run
    for request in sys.stdin:
        if not request.strip():
            break
        _, concurrency, passes = json.loads(request)
        print(json.dumps(run(_scenario(concurrency, passes, n))), flush=True)


def _start(tree: Path, n: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.Popen(
        [sys.executable, __file__, "--worker", "--n", str(n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def _ask(worker: subprocess.Popen[str], scenario: tuple[str, int, str]) -> dict[str, float]:
    assert worker.stdin is not None
    assert worker.stdout is not None
    worker.stdin.write(json.dumps(scenario) + "\n")
    worker.stdin.flush()
    return dict(json.loads(worker.stdout.readline()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="turns per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another checkout's middleware/ directory")
    parser.add_argument("--quick", action="store_true", help="tiny counts (a smoke run)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.rounds = 40, 1
    if args.worker:
        _worker(args.n)
        return 0
    trees = {"this tree": TREE}
    if args.baseline is not None:
        trees = {"baseline": args.baseline.resolve(), **trees}
    workers = {name: _start(tree, args.n) for name, tree in trees.items()}
    best: dict[tuple[str, str], dict[str, float]] = {}
    try:
        for _ in range(args.rounds):
            for scenario in SCENARIOS:
                for name, worker in workers.items():
                    result = _ask(worker, scenario)
                    key = (scenario[0], name)
                    if key not in best or result["cpu"] < best[key]["cpu"]:
                        best[key] = result
    finally:
        for worker in workers.values():
            assert worker.stdin is not None
            assert worker.stdout is not None
            worker.stdin.close()
            worker.wait()
            worker.stdout.close()
    print(f"{args.n} turns per round, best of {args.rounds} rounds, trees taking turns")
    print("| scenario | tree | CPU µs per stored turn | ratio | thread hops per turn |")
    print("|---|---|---:|---:|---:|")
    for scenario in SCENARIOS:
        first = best[(scenario[0], next(iter(trees)))]["cpu"]
        for name in trees:
            result = best[(scenario[0], name)]
            ratio = result["cpu"] / first if first > 0 else float("nan")
            print(
                f"| {scenario[0]} | {name} | {result['cpu']:.1f} | {ratio:.2f} "
                f"| {result['hops']:.3f} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
