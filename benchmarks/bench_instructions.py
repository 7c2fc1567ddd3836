"""CPU instructions per request, this checkout against a baseline, counted by valgrind.

Time on a shared machine moves by tens of percent from run to run; the instructions a request
executes hardly do (``PYTHONHASHSEED=0``; the cyclic collector off while counting, since when
it runs depends on the random parts of a request). Each workload of ``bench_ab.py`` runs in its
own process under ``valgrind --tool=callgrind`` with instrumentation off through the imports
and a warm-up, and on for the measured requests only (a callgrind client request, through a
small C library compiled here). System calls (``getpid``, socket writes) cost no instructions
here: time them. Needs ``valgrind``, its ``callgrind.h`` and a C compiler.

    python benchmarks/bench_instructions.py --base-ref main
    python benchmarks/bench_instructions.py --base /path/to/other/middleware --only gateway-json

Printed: instructions per request of each side and the change, and routing's fixed cost per
stream from the short and the long stream over the bare app (``bench_routing.py``'s split).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import ctypes
import gc
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "middleware"), str(HERE)]

import bench_ab  # noqa: E402
from _harness import Parked, noop_send  # noqa: E402

_LIBRARY = """
#include <valgrind/callgrind.h>
void measure_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION;
                           CALLGRIND_TOGGLE_COLLECT; }
void measure_stop(void) { CALLGRIND_TOGGLE_COLLECT; CALLGRIND_DUMP_STATS;
                          CALLGRIND_STOP_INSTRUMENTATION; }
"""
_TOTAL = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def compile_library(into: Path) -> Path:
    source = into / "measure.c"
    source.write_text(_LIBRARY)
    library = into / "libmeasure.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", str(library), str(source)], check=True)
    return library


def child(side: str, workload: str, n: int, library: str, key: str) -> None:
    """Runs inside valgrind: ``n`` requests of ``workload``, measured between the two calls."""
    package = importlib.import_module(bench_ab.BASE_NAME if side == "A" else "akgate")
    app, scope, body = bench_ab.build(package, workload, key)
    measure = ctypes.CDLL(library)

    async def run() -> None:
        for _ in range(50):  # lazy imports, caches
            await app(dict(scope), Parked(body), noop_send)
            await asyncio.sleep(0)
        # The cyclic collector runs when allocations reach its thresholds, a count that the
        # random parts of a request (ids, timestamps) shift from run to run: it moved single
        # counts by 2-5k. Off while counting, so A and B differ by their code alone; what the
        # collector costs shows in the timed benchmarks.
        gc.collect()
        gc.disable()
        measure.measure_start()
        for _ in range(n):
            await app(dict(scope), Parked(body), noop_send)
            await asyncio.sleep(0)
        measure.measure_stop()
        gc.enable()

    asyncio.run(run())


def count(side: str, workload: str, n: int, library: Path, base: Path, key: str) -> float:
    with tempfile.TemporaryDirectory(prefix="akgate-cg-") as tmp:
        out = Path(tmp) / "cg.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            "--collect-atstart=no",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--child",
            side,
            workload,
            str(n),
            str(library),
            str(base),
            key,
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        subprocess.run(command, check=True, capture_output=True, env=env)
        dumps = sorted(Path(tmp).glob("cg.out.*"))
        if not dumps:
            raise SystemExit(f"{workload}: callgrind wrote no dump")
        found = _TOTAL.search(dumps[-1].read_bytes())
        if found is None:
            raise SystemExit(f"{workload}: no total in the callgrind dump")
        return int(found.group(1)) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--base", type=Path, help="a directory holding the baseline akgate")
    source.add_argument("--base-ref", help="a git ref of this repository as the baseline")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--only", help="comma-separated workloads: " + ",".join(bench_ab.WORKLOADS))
    parser.add_argument("--jobs", type=int, default=2, help="valgrind processes at once")
    args = parser.parse_args(argv)
    for tool in ("valgrind", "cc"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed: nothing measured")
            return 1
    names = args.only.split(",") if args.only else list(bench_ab.WORKLOADS)
    if "routing-stream" in names:
        names += [w for w in bench_ab._FIXED_PARTS if w not in names]
    key = importlib.import_module("akgate.auth._keys").generate_key("live")[0]
    with tempfile.TemporaryDirectory(prefix="akgate-instr-") as tmp:
        middleware = args.base if args.base else bench_ab.export_ref(args.base_ref, Path(tmp))
        base = Path(tmp) / "base"
        bench_ab.install_base(middleware, base)
        library = compile_library(Path(tmp))
        jobs = {}
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            for workload in names:
                n = args.requests // (3 if workload.endswith("long") else 1)
                sides = ("A",) if workload.startswith("bare") else ("A", "B")
                for side in sides:
                    jobs[(side, workload)] = pool.submit(
                        count, side, workload, n, library, base, key
                    )
        counts = {job: future.result() for job, future in jobs.items()}
    label = args.base if args.base else args.base_ref
    print(f"instructions per request; A = {label}, B = this checkout")
    print(f"{'workload':<22}{'A':>12}{'B':>12}{'change':>9}")
    for workload in names:
        a = counts[("A", workload)]
        b = counts.get(("B", workload), a)
        print(f"{workload:<22}{a:>12,.0f}{b:>12,.0f}{(b - a) / a:>+9.1%}")
    if "routing-stream" in names:
        bare_short, bare_long = counts[("A", "bare-stream")], counts[("A", "bare-stream-long")]
        for side in ("A", "B"):
            short = counts[(side, "routing-stream")] - bare_short
            long_ = counts[(side, "routing-stream-long")] - bare_long
            slope = (long_ - short) / 100
            print(
                f"routing {side}: added per chunk {slope:,.0f}, "
                f"fixed per stream {short - 12 * slope:,.0f} instructions"
            )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        side, workload, n, library, base, key = sys.argv[2:8]
        if side == "A":
            sys.path.insert(0, base)
        child(side, workload, int(n), library, key)
    else:
        sys.exit(main())
