"""The parts of a stored turn on SQLite, each measured alone (see ``bench_state.py`` for the whole).

Run: ``python benchmarks/bench_state_parts.py [--n 3000] [--rounds 5]``

* the hop from the event loop to a thread and back, three ways: ``anyio.to_thread.run_sync``,
  ``loop.run_in_executor`` with one thread, and one dedicated thread fed by a queue (what
  ``SQLiteResponseStore`` uses);
* one turn's insert (the record and two items in one transaction) on the loop, and through the
  dedicated thread;
* that insert with random ids against ids that start with the time (``new_stored_id``), on a
  file that already holds 5000 turns, with WAL checkpoints included.

Each figure is the best of the rounds, per call, wall time and process CPU (every thread).
The variants of a group take turns in every round.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "middleware"))

import anyio.to_thread

from akgate.store._sqlite import _SCHEMA

RECORD = os.urandom(1435)  # the size of bench_state.py's stored record
ITEM = os.urandom(160)


class DedicatedThread:
    """One thread, a queue, a future per call (the shape of ``SQLiteResponseStore._run``)."""

    def __init__(self) -> None:
        self.calls: queue.SimpleQueue[tuple[Callable[[], Any], Callable[[Any], None]]] = (
            queue.SimpleQueue()
        )
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            func, reply = self.calls.get()
            reply(func())

    async def run(self, func: Callable[[], Any]) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.calls.put((func, lambda r: loop.call_soon_threadsafe(future.set_result, r)))
        return await future


def database(ordered: bool, preload: int) -> Callable[[], None]:
    """A fresh WAL file with the store's schema; returns one turn's insert."""
    path = Path(tempfile.mkdtemp()) / "bench.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    for statement in _SCHEMA:
        conn.execute(statement)

    def new_id(prefix: str) -> str:
        if ordered:
            return f"{prefix}{time.time_ns() // 1000:014x}{os.urandom(9).hex()}"
        return prefix + os.urandom(16).hex()

    def insert() -> None:
        rid = new_id("resp_")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)", ("", rid, 9e9, RECORD))
        conn.executemany(
            "INSERT OR REPLACE INTO response_items VALUES (?, ?, ?, ?)",
            [("", new_id("msg_"), rid, ITEM) for _ in range(2)],
        )
        conn.execute("COMMIT")

    for _ in range(preload):
        insert()
    return insert


async def best_of(
    variants: dict[str, Callable[[], Awaitable[Any]]], n: int, rounds: int
) -> dict[str, tuple[float, float]]:
    best = {name: (float("inf"), float("inf")) for name in variants}
    for _ in range(rounds):
        for name, call in variants.items():
            cpu0, t0 = time.process_time(), time.perf_counter()
            for _ in range(n):
                await call()
            wall = (time.perf_counter() - t0) / n * 1e6
            cpu = (time.process_time() - cpu0) / n * 1e6
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


def show(title: str, result: dict[str, tuple[float, float]]) -> None:
    print(title)
    for name, (wall, cpu) in result.items():
        print(f"  {name:34} {wall:7.1f} us  ({cpu:6.1f} CPU)")


async def main_async(n: int, rounds: int, preload: int) -> None:
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(1)
    dedicated = DedicatedThread()

    def noop() -> None:
        return None

    async def anyio_hop() -> None:
        await anyio.to_thread.run_sync(noop)

    async def executor_hop() -> None:
        await loop.run_in_executor(pool, noop)

    async def dedicated_hop() -> None:
        await dedicated.run(noop)

    show(
        "thread hop (a call that does nothing):",
        await best_of(
            {
                "anyio.to_thread.run_sync": anyio_hop,
                "loop.run_in_executor": executor_hop,
                "dedicated thread + queue": dedicated_hop,
            },
            n,
            rounds,
        ),
    )

    on_loop = database(ordered=True, preload=0)
    in_thread = database(ordered=True, preload=0)

    async def insert_on_loop() -> None:
        on_loop()

    async def insert_in_thread() -> None:
        await dedicated.run(in_thread)

    show(
        "one turn's insert (fresh file):",
        await best_of(
            {"on the loop": insert_on_loop, "through the dedicated thread": insert_in_thread},
            n,
            rounds,
        ),
    )

    random_ids = database(ordered=False, preload=preload)
    ordered_ids = database(ordered=True, preload=preload)

    async def insert_random() -> None:
        random_ids()

    async def insert_ordered() -> None:
        ordered_ids()

    show(
        f"one turn's insert on a file of {preload} turns (checkpoints included):",
        await best_of(
            {"random ids": insert_random, "ids that start with the time": insert_ordered},
            n,
            rounds,
        ),
    )
    pool.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--preload", type=int, default=5000, help="turns already in the file")
    args = parser.parse_args(argv)
    print(
        f"python {sys.version.split()[0]}, {args.n} calls x best of {args.rounds} rounds, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    asyncio.run(main_async(args.n, args.rounds, args.preload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
