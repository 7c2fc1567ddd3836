"""Same-process A/B: this checkout's akgate against a baseline copy, interleaved round by round.

A difference of a few microseconds between two runs of a benchmark is lost in the noise of a
shared machine; running both versions in one process, in alternating turns, puts them under the
same load, the same CPU frequency and the same interpreter state. The baseline is any directory
holding an ``akgate`` package (another worktree's ``middleware``, or ``git archive`` of a
commit); it is copied to a temporary directory as ``akgate_base`` (its absolute
``akgate`` imports rewritten), so both import side by side.

    python benchmarks/bench_ab.py --base /path/to/other/middleware
    python benchmarks/bench_ab.py --base-ref main            # git archive of a ref of this repo
    python benchmarks/bench_ab.py --base-ref main --only gateway-json,routing-stream

Each workload runs ``--requests`` sequential requests per turn (``asyncio.sleep(0)`` after each,
as in ``_harness.bench``), timed by the process's CPU clock; A and B take turns (order flipped
every round) for ``--rounds`` rounds. Printed per workload: the median and best µs per request of
each, and B - A (the median of the per-round differences, so a slow round hits both sides, and
their interquartile range); and the 10th percentile of each side's means over batches of 25
requests (the least disturbed batches: on a busy machine the steadiest figure). The
routing stream's fixed cost per stream is also derived per side, from a short and a long stream
(``bench_routing.py``'s method), with the medians of the per-round values.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "middleware"), str(HERE)]

from _harness import Parked, make_scope, noop_send  # noqa: E402

BASE_NAME = "akgate_base"
_ABSOLUTE = re.compile(r"^(\s*)(from|import) akgate(\b)", re.MULTILINE)


def install_base(source: Path, into: Path) -> None:
    """Copy ``source/akgate`` to ``into/akgate_base``, its absolute imports renamed."""
    target = into / BASE_NAME
    shutil.copytree(source / "akgate", target, ignore=shutil.ignore_patterns("__pycache__"))
    for path in target.rglob("*.py"):
        text = path.read_text()
        renamed = _ABSOLUTE.sub(rf"\1\2 {BASE_NAME}\3", text)
        if renamed != text:
            path.write_text(renamed)
    sys.path.insert(0, str(into))


def export_ref(ref: str, into: Path) -> Path:
    """``git archive`` of ``ref``'s ``middleware`` directory, unpacked under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "middleware/akgate"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "middleware"


# -- workloads -----------------------------------------------------------------------------------

PROMPT = "Tell me about the weather in Paris today in a few sentences."
#: A long conversation (what an agent client sends): 200 text messages, then the prompt.
HISTORY = [
    {"role": "user" if i % 2 == 0 else "assistant", "content": f"Message {i} of a long talk."}
    for i in range(200)
] + [{"role": "user", "content": PROMPT}]


def _messages(workload: str) -> list[dict[str, str]]:
    return HISTORY if "history" in workload else [{"role": "user", "content": PROMPT}]


def build(pkg: ModuleType, workload: str, key: str) -> tuple[Any, dict[str, Any], bytes]:
    """``(app, scope, body)`` of ``workload`` built with the package ``pkg``."""
    name = pkg.__name__
    providers = importlib.import_module(f"{name}.providers")
    routing = importlib.import_module(f"{name}.routing")
    stack = importlib.import_module(f"{name}.stack")
    headers = [(b"authorization", b"Bearer " + key.encode())]
    if workload.startswith("gateway"):
        app = stack.gateway(
            providers.DemoModel(), keys=[key], catalog=routing.Catalog.demo("app"), demo=False
        )
        if workload.startswith("gateway-responses"):
            path, payload = "/v1/responses", {"model": "demo", "input": PROMPT}
        else:
            path = "/v1/chat/completions"
            payload = {"model": "demo", "messages": _messages(workload)}
        if workload.endswith("stream"):
            payload["stream"] = True
        body = json.dumps(payload).encode()
        return app, make_scope(path, body, headers=headers), body
    if workload.startswith("demo"):  # the bare demo app: the floor the others are compared to
        payload = {"model": "demo", "messages": _messages(workload)}
        if workload.endswith("stream"):
            payload["stream"] = True
        body = json.dumps(payload).encode()
        path = "/v1/chat/completions"
        return providers.DemoModel(), make_scope(path, body, headers=headers), body
    import bench_routing as br

    chunks = 110 if workload.endswith("long") else 10
    if workload.startswith("bare"):  # bench_routing.py's provider app alone
        body = br.STREAM_REQUEST
        return br.make_app(chunks), make_scope("/v1/chat/completions", body), body
    catalog = routing.Catalog.from_dict(
        {"models": {"bench": {"providers": [{"name": "app", "input_price": 1, "output_price": 2}]}}}
    )
    app = routing.Routing(br.make_app(chunks), catalog=catalog, app_provider="app")
    body = br.REQUEST if workload == "routing-json" else br.STREAM_REQUEST
    return app, make_scope("/v1/chat/completions", body), body


#: What the fixed cost per routed stream is computed from (``bench_routing.py``'s split).
_FIXED_PARTS = ("routing-stream-long", "bare-stream", "bare-stream-long")

WORKLOADS = (
    "demo-json",
    "gateway-json",
    "demo-history",  # 201 messages
    "gateway-history",
    "gateway-stream",
    "gateway-responses",
    "routing-json",
    "routing-stream",
    "routing-stream-long",
    "bare-stream",
    "bare-stream-long",
)


#: Requests per batch within a turn: the low percentile of the batch means is the figure least
#: disturbed by other processes (a batch that ran undisturbed shows the code's own cost).
BATCH = 25


async def turn(
    app: Any, scope: dict[str, Any], body: bytes, n: int, batches: list[float] | None = None
) -> float:
    clock = time.process_time
    start = mark = clock()
    for i in range(1, n + 1):
        await app(dict(scope), Parked(body), noop_send)
        await asyncio.sleep(0)
        if batches is not None and i % BATCH == 0:
            now = clock()
            batches.append((now - mark) / BATCH * 1e6)
            mark = now
    return (clock() - start) / n * 1e6


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def compare(args: argparse.Namespace) -> None:
    base = importlib.import_module(BASE_NAME)
    new = importlib.import_module("akgate")
    key = importlib.import_module("akgate.auth._keys").generate_key("live")[0]
    names = args.only.split(",") if args.only else list(WORKLOADS)
    if "routing-stream" in names:  # for the fixed cost per stream
        names += [w for w in _FIXED_PARTS if w not in names]
    results: dict[str, dict[str, list[float]]] = {}
    low: dict[str, dict[str, float]] = {}
    for workload in names:
        sides = {"A": build(base, workload, key), "B": build(new, workload, key)}
        n = args.requests // (5 if "stream" in workload else 1)
        for app, scope, body in sides.values():
            await turn(app, scope, body, max(50, n // 5))  # warm-up
        per_side: dict[str, list[float]] = {"A": [], "B": []}
        batches: dict[str, list[float]] = {"A": [], "B": []}
        for round_ in range(args.rounds):
            order = ("A", "B") if round_ % 2 == 0 else ("B", "A")
            for side in order:
                per_side[side].append(await turn(*sides[side], n, batches[side]))
        results[workload] = per_side
        low[workload] = {
            side: percentile(batches[side] or per_side[side], 0.1) for side in ("A", "B")
        }
    print(f"python {sys.version.split()[0]}; A = {args.label_a}, B = this checkout")
    print(
        f"{'workload':<22}{'A med':>9}{'B med':>9}{'B-A med':>10}{'B-A IQR':>18}"
        f"{'A p10':>9}{'B p10':>9}{'B-A p10':>10}"
    )
    for workload, per_side in results.items():
        a, b = per_side["A"], per_side["B"]
        diffs = sorted(y - x for x, y in zip(a, b, strict=True))
        q1, q3 = diffs[len(diffs) // 4], diffs[(3 * len(diffs)) // 4]
        a10, b10 = low[workload]["A"], low[workload]["B"]
        print(
            f"{workload:<22}{statistics.median(a):>9.2f}{statistics.median(b):>9.2f}"
            f"{statistics.median(diffs):>+10.2f}{f'[{q1:+.2f}, {q3:+.2f}]':>18}"
            f"{a10:>9.2f}{b10:>9.2f}{b10 - a10:>+10.2f}"
        )
    if "routing-stream" in results:
        # bench_routing.py's split, per round: routing's added time on a 12- and a 112-message
        # stream; the slope over the 100 extra chunks is the cost per chunk, the rest is fixed.
        for side in ("A", "B"):
            rows = zip(
                results["routing-stream"][side],
                results["routing-stream-long"][side],
                results["bare-stream"][side],
                results["bare-stream-long"][side],
                strict=True,
            )
            slopes, fixed = [], []
            for short, long_, bare_short, bare_long in rows:
                slope = ((long_ - bare_long) - (short - bare_short)) / 100
                slopes.append(slope)
                fixed.append(short - bare_short - slope * 12)
            short, long_ = low["routing-stream"][side], low["routing-stream-long"][side]
            bare_short, bare_long = low["bare-stream"][side], low["bare-stream-long"][side]
            slope10 = ((long_ - bare_long) - (short - bare_short)) / 100
            fixed10 = short - bare_short - slope10 * 12
            print(
                f"routing stream {side}: added per chunk {statistics.median(slopes):.3f} us, "
                f"fixed per stream {statistics.median(fixed):.2f} us (medians of rounds); "
                f"from the p10 figures {slope10:.3f} and {fixed10:.2f} us"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--base", type=Path, help="a directory holding the baseline akgate")
    source.add_argument("--base-ref", help="a git ref of this repository as the baseline")
    # Short turns, many rounds: load that comes and goes on a shared machine hits both sides.
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--only", help="comma-separated workloads: " + ",".join(WORKLOADS))
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="akgate-ab-") as tmp:
        middleware = args.base if args.base else export_ref(args.base_ref, Path(tmp))
        args.label_a = str(args.base) if args.base else args.base_ref
        if BASE_NAME not in sys.modules:
            install_base(middleware, Path(tmp) / "base")
        if args.uvloop:
            import uvloop

            uvloop.install()
        asyncio.run(compare(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
