"""The stack ``akgate serve`` runs, in process: CPU per request (all threads) vs the bare demo.

    python benchmarks/bench_served.py                   # about a minute
    python benchmarks/bench_served.py --quick           # smoke run
    python benchmarks/bench_served.py --baseline ../old/middleware   # + an older akgate, same run

``bench_overhead.py`` measures ``gateway()`` with in-memory stores; what a user runs with
``akgate serve`` adds the SQLite key store, the usage ledger and its writer thread, the response
store and the operations layers (access log, metrics, health, traces). Each variant is built the
way ``akgate serve`` builds it (``build_app`` + ``_with_operations`` from a ``ServeConfig``), in its
own process with its own ``$AKGATE_HOME``, so that one variant's threads never run while another
is measured.
The variants take turns round by round; each round runs the lifespan start-up, a warm-up, then
sequential requests through a canned scope (as ``bench_overhead.py``), and reports:

- **CPU µs per request**: ``time.process_time``, which counts every thread of the process (the
  ledger's writer, the worker threads), not only the event loop's;
- **context switches per request** of the threads other than the event loop's
  (``voluntary_ctxt_switches`` in ``/proc/self/task/*/status``): a thread that needs the GIL back
  while the loop is busy is woken by each of the loop's GIL releases and sleeps again, which costs
  the loop a system call each time; this column shows it (see ``docs/design.md``).

Ratios are to the bare demo app (``DemoModel`` alone; on ``/v1/responses``, with the
``ResponsesAdapter`` that lets it answer there), measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))  # _harness; akgate is imported in the variants' processes only

#: name -> ``ServeConfig`` fields; ``None``: the bare demo app.
VARIANTS: dict[str, dict[str, Any] | None] = {
    "bare demo app": None,
    "akgate serve": {},
    # What bench_peer.py's "lean" row turns off: metrics, tracing, health, the response store.
    "akgate serve, lean": {
        "metrics_path": None,
        "tracing": False,
        "healthz_path": None,
        "readyz_path": None,
        "responses_store": "off",
    },
    "akgate serve, lean, no access log": {
        "metrics_path": None,
        "tracing": False,
        "healthz_path": None,
        "readyz_path": None,
        "responses_store": "off",
        "access_log": False,
    },
}
#: Marks the child's result, after its access lines, in the output they share.
_RESULT = "\nbench_served result: "
PROMPT = "Tell me about the weather in Paris today in a few sentences."
REQUESTS = {
    "chat JSON": ("/v1/chat/completions", {"messages": [{"role": "user", "content": PROMPT}]}),
    "responses JSON": ("/v1/responses", {"input": PROMPT}),
}


# --- one variant, in its own process -----------------------------------------------------------


def _thread_switches() -> dict[int, int]:
    """Voluntary context switches of each thread of this process, by thread id."""
    counts = {}
    for tid in os.listdir("/proc/self/task"):
        status = Path(f"/proc/self/task/{tid}/status").read_text()
        counts[int(tid)] = int(status.split("voluntary_ctxt_switches:")[1].split()[0])
    return counts


async def _lifespan(app: Any) -> tuple[asyncio.Queue[dict[str, Any]], asyncio.Task[None]]:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.ensure_future(app(scope, inbox.get, outbox.put))
    started = await outbox.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"lifespan start-up failed: {started}")
    return inbox, task


async def _run_variant(name: str, request: str, n: int, warmup: int) -> dict[str, Any]:
    from _harness import bench, call_once, make_scope

    from akgate._serve import ServeConfig, _first_key, _with_operations, build_app
    from akgate.providers import DemoModel

    fields = VARIANTS[name]
    path, payload = REQUESTS[request]
    body = json.dumps({"model": "demo", **payload}).encode()
    headers: list[tuple[bytes, bytes]] = []
    if fields is None:
        app: Any = DemoModel(token_delay=0)
        if path == "/v1/responses":
            from akgate.adapter import ResponsesAdapter

            app = ResponsesAdapter(app)  # the least that answers /v1/responses
    else:
        config = ServeConfig(token_delay_ms=0, **fields)
        choice, _, _ = await _first_key(config)
        assert choice.key is not None  # a fresh $AKGATE_HOME: a new demo key
        headers = [(b"authorization", b"Bearer " + choice.key.encode())]
        app = _with_operations(build_app(config), config)
    inbox, lifespan = await _lifespan(app)
    scope = make_scope(path, body, headers=headers)
    answer = await call_once(app, scope, body)
    if answer.status != 200:
        raise RuntimeError(f"{name}: {answer.status} {answer.body[:300]!r}")
    gc.collect()
    gc.freeze()  # as akgate serve does after start-up
    await bench(app, scope, body, n=warmup, rounds=1, warmup=0, clock=time.process_time)
    loop_thread = threading.get_native_id()
    before = _thread_switches()
    micros = await bench(app, scope, body, n=n, rounds=1, warmup=0, clock=time.process_time)
    after = _thread_switches()
    others = sum(count - before.get(tid, 0) for tid, count in after.items() if tid != loop_thread)
    await inbox.put({"type": "lifespan.shutdown"})
    await lifespan
    return {"us": micros, "switches": others / n}


def _child(args: argparse.Namespace) -> None:
    try:
        from uvloop import run
    except ImportError:  # the same loop as akgate serve picks
        from asyncio import run
    sys.path.insert(0, args.code)
    os.environ.pop("AKGATE_API_KEYS", None)
    with tempfile.TemporaryDirectory(prefix="akgate-bench-served-") as home:
        os.environ["AKGATE_HOME"] = home  # fresh stores and a new demo key
        result = run(_run_variant(args.variant, args.request[0], args.n, args.warmup))
    sys.stdout.flush()  # the access lines still pending go first
    print(_RESULT + json.dumps(result))


# --- the run -------------------------------------------------------------------------------------


def _measure(name: str, code: Path, request: str, n: int, warmup: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", name, "--code", str(code)]
    command += ["--request", request, "-n", str(n), "--warmup", str(warmup)]
    # akgate serve writes its access lines to stdout and its other records to stderr: here both
    # go to a file (a pipe would make each write wake this process), read back for the result.
    with tempfile.TemporaryFile() as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if done.returncode:
        raise RuntimeError(f"{name}: {text[-800:]}")
    result: dict[str, Any] = json.loads(text[text.rindex(_RESULT) + len(_RESULT) :])
    return result


def main(argv: list[str] | None = None) -> int:
    from _harness import machine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts (smoke run)")
    parser.add_argument("-n", type=int, default=3000, help="requests per round")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--request", choices=sorted(REQUESTS), action="append")
    parser.add_argument("--baseline", metavar="DIR", help="also run the akgate package in DIR")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--code", default=str(ROOT / "middleware"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.variant = args.child
        _child(args)
        return 0
    if args.quick:
        args.n, args.warmup, args.rounds = 60, 20, 1
    requests = args.request or list(REQUESTS)
    codes = {"": ROOT / "middleware"}
    if args.baseline:
        codes[" (baseline)"] = Path(args.baseline).resolve()
    print(machine())
    print(f"{args.rounds} interleaved round(s) of {args.n} requests per variant (median).\n")
    for request in requests:
        runs: dict[str, list[dict[str, Any]]] = {}
        for _ in range(args.rounds):
            for name in VARIANTS:
                for label, code in codes.items():
                    if VARIANTS[name] is None and label:
                        continue  # one bare app: the ratios' base
                    runs.setdefault(name + label, []).append(
                        _measure(name, code, request, args.n, args.warmup)
                    )
        bare = statistics.median(run["us"] for run in runs["bare demo app"])
        print(request)
        print("| variant | CPU µs/request | ratio | added µs | other threads' switches/request |")
        print("|---|---:|---:|---:|---:|")
        for name, results in runs.items():
            micros = statistics.median(run["us"] for run in results)
            switches = statistics.median(run["switches"] for run in results)
            print(
                f"| {name} | {micros:.1f} | {micros / bare:.2f} | {micros - bare:.1f} "
                f"| {switches:.2f} |"
            )
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
