"""Overhead of each akgate layer and of the full stack, as ratios to the bare demo app.

    python benchmarks/bench_overhead.py                 # in-process + uvicorn, ~2-3 minutes
    python benchmarks/bench_overhead.py --write-docs    # and rewrite docs/benchmarks.md's table
    python benchmarks/bench_overhead.py --quick --no-server

(a) In process (asgi-notes.md §4.5): canned scope, ``receive`` parks after the body, no-op
    ``send``; warm-up, then the best of N rounds (the variants take turns round by round), timed
    by the process's CPU clock. Microseconds per non-streaming request, per
    streamed request and added per streamed chunk; plus a buffering probe that counts how many
    inner chunks were ever held back at once (1 = no added buffering).
(b) Over uvicorn on 127.0.0.1: one server process per variant, loaded from a separate process
    by ``wrk`` when installed, else by a Python httpx load script, at concurrency 1 and 32:
    p50/p99 latency and requests per second.

All variants run in the same invocation, so the ratios compare like with like.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "middleware"), str(HERE)]

from _harness import StreamProbe, bench, call_once, make_scope  # noqa: E402

from akgate.adapter import ResponsesAdapter  # noqa: E402
from akgate.auth import APIKeyAuth, MemoryKeyStore, generate_key  # noqa: E402
from akgate.providers.demo import DemoModel  # noqa: E402
from akgate.routing import Catalog, Routing  # noqa: E402
from akgate.stack import gateway  # noqa: E402
from akgate.validation import RequestValidation  # noqa: E402

KEY_ENV = "AKGATE_BENCH_KEY"
CHAT_PATH = "/v1/chat/completions"
RESPONSES_PATH = "/v1/responses"
PROMPT = "Tell me about the weather in Paris today in a few sentences."
CHAT = {"model": "demo", "messages": [{"role": "user", "content": PROMPT}]}
RESPONSES = {"model": "demo", "input": PROMPT}
DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"

Builder = Callable[[Any, str], Any]

#: name -> (builder(inner_app, key), path, description)
VARIANTS: dict[str, tuple[Builder, str, str]] = {
    "bare": (lambda app, key: app, CHAT_PATH, "DemoModel alone"),
    "auth": (
        lambda app, key: APIKeyAuth(app, store=MemoryKeyStore.from_keys([key])),
        CHAT_PATH,
        "APIKeyAuth (memory store)",
    ),
    "validation": (lambda app, key: RequestValidation(app), CHAT_PATH, "RequestValidation"),
    "routing": (
        lambda app, key: Routing(app, catalog=Catalog.demo("app")),
        CHAT_PATH,
        "Routing (demo catalog on the app)",
    ),
    "adapter": (
        lambda app, key: ResponsesAdapter(app),
        RESPONSES_PATH,
        "ResponsesAdapter, /v1/responses",
    ),
    "full": (
        lambda app, key: gateway(app, keys=[key], catalog=Catalog.demo("app"), demo=False),
        CHAT_PATH,
        "gateway(): auth+validation+routing",
    ),
    "full-responses": (
        lambda app, key: gateway(app, keys=[key], catalog=Catalog.demo("app"), demo=False),
        RESPONSES_PATH,
        "gateway(), /v1/responses (+adapter)",
    ),
}
SERVER_VARIANTS = ("bare", "auth", "validation", "routing", "full", "full-responses")


def request_body(path: str, *, stream: bool) -> bytes:
    payload: dict[str, Any] = dict(CHAT if path == CHAT_PATH else RESPONSES)
    if stream:
        payload["stream"] = True
    return json.dumps(payload).encode()


def auth_headers(key: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", b"Bearer " + key.encode())]


# -- (a) in process ------------------------------------------------------------------------------


async def in_process(names: list[str], key: str, n: int, rounds: int) -> list[dict[str, Any]]:
    """Per variant, the best round of CPU time per request; the variants take turns round by
    round, so a burst of load elsewhere on the machine hits them all alike."""
    variants = []
    for name in names:
        builder, path, description = VARIANTS[name]
        probe = StreamProbe(DemoModel())
        app = builder(probe, key)
        row: dict[str, Any] = {"variant": name, "description": description}
        for stream in (False, True):
            body = request_body(path, stream=stream)
            scope = make_scope(path, body, headers=auth_headers(key))
            result = await call_once(app, scope, body)
            if result.status != 200:
                raise SystemExit(f"{name}: status {result.status}: {result.body[:300]!r}")
            if stream:
                inner, outer, held = await probe.measure(app, scope, body)
                row.update(chunks=inner, out_messages=outer, max_held=held)
        variants.append((row, app, path))
    for round_ in range(rounds):
        for row, app, path in variants:
            for stream in (False, True):
                body = request_body(path, stream=stream)
                scope = make_scope(path, body, headers=auth_headers(key))
                warmup = max(n // 10, 20) if round_ == 0 else 0
                us = await bench(
                    app, scope, body, n=n, rounds=1, warmup=warmup, clock=time.process_time
                )
                field = "stream_us" if stream else "json_us"
                row[field] = min(row.get(field, us), us)
    rows = [row for row, _, _ in variants]
    bare = rows[0]
    for row in rows:
        row["json_ratio"] = row["json_us"] / bare["json_us"]
        row["added_us"] = row["json_us"] - bare["json_us"]
        per_chunk = (row["stream_us"] - row["json_us"]) - (bare["stream_us"] - bare["json_us"])
        row["added_per_chunk_us"] = per_chunk / max(row["chunks"], 1)
    return rows


# -- (b) over uvicorn ----------------------------------------------------------------------------


def serve(name: str, port: int) -> None:
    """Run one variant on uvicorn (in its own process)."""
    import uvicorn

    builder, _, _ = VARIANTS[name]
    app = builder(DemoModel(), os.environ[KEY_ENV])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start")


_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6}


def _wrk_time(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"unexpected wrk time {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> dict[str, float]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _wrk_time(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _wrk_time(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*", output)
    return {
        "rps": rps,
        "p50_us": p50,
        "p99_us": p99,
        "errors": float(bad.group(1)) if bad else (1.0 if errors else 0.0),
    }


def run_wrk(url: str, body: bytes, key: str, concurrency: int, duration: float) -> dict[str, float]:
    script = (
        'wrk.method = "POST"\n'
        f"wrk.body = [[{body.decode()}]]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    try:
        output = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{concurrency}",
                f"-d{max(duration, 1):.0f}s",
                "--latency",
                "-s",
                fh.name,
                url,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        os.unlink(fh.name)
    return parse_wrk(output)


async def _python_load(
    url: str, body: bytes, key: str, concurrency: int, duration: float
) -> dict[str, float]:
    import httpx

    latencies: list[float] = []
    errors = 0
    headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        stop = time.perf_counter() + duration

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                response = await client.post(url, content=body, headers=headers)
                latencies.append(time.perf_counter() - t0)
                errors += response.status_code != 200

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_us": latencies[len(latencies) // 2] * 1e6,
        "p99_us": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e6,
        "errors": float(errors),
    }


def run_python_load(
    url: str, body: bytes, key: str, concurrency: int, duration: float
) -> dict[str, float]:
    """The fallback load generator, in a separate Python process."""
    output = subprocess.run(
        [
            sys.executable,
            __file__,
            "--load",
            url,
            "--concurrency",
            str(concurrency),
            "--duration",
            str(duration),
        ],
        input=body,
        check=True,
        capture_output=True,
        env={**os.environ, KEY_ENV: key},
    ).stdout
    result: dict[str, float] = json.loads(output)
    return result


def over_uvicorn(
    names: list[str], key: str, duration: float, rounds: int, loader: str
) -> list[dict[str, Any]]:
    load = run_wrk if loader == "wrk" else run_python_load
    samples: dict[tuple[str, int], list[dict[str, float]]] = {}
    for _ in range(rounds):
        for name in names:  # variants interleaved round by round
            _, path, _ = VARIANTS[name]
            port = _free_port()
            process = subprocess.Popen(
                [sys.executable, __file__, "--serve", name, "--port", str(port)],
                env={**os.environ, KEY_ENV: key},
            )
            try:
                _wait_ready(port, process)
                url = f"http://127.0.0.1:{port}{path}"
                body = request_body(path, stream=False)
                load(url, body, key, 1, min(duration, 1.0))  # warm-up
                for concurrency in (1, 32):
                    result = load(url, body, key, concurrency, duration)
                    if result["errors"]:
                        raise SystemExit(f"{name}: {result['errors']:.0f} failed requests")
                    samples.setdefault((name, concurrency), []).append(result)
            finally:
                process.terminate()
                process.wait(timeout=10)
    rows = []
    for name in names:
        row: dict[str, Any] = {"variant": name}
        for concurrency in (1, 32):
            runs = samples[(name, concurrency)]
            for metric in ("rps", "p50_us", "p99_us"):
                row[f"c{concurrency}_{metric}"] = statistics.median(r[metric] for r in runs)
        rows.append(row)
    bare = rows[0]
    for row in rows:
        for concurrency in (1, 32):
            row[f"c{concurrency}_rps_ratio"] = (
                row[f"c{concurrency}_rps"] / bare[f"c{concurrency}_rps"]
            )
        row["c1_added_p50_us"] = row["c1_p50_us"] - bare["c1_p50_us"]
    return rows


# -- report --------------------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import uvicorn

    return (
        f"{os.cpu_count()} CPUs (nproc), {model}; Python {platform.python_version()} "
        f"({platform.python_implementation()}), asyncio event loop, uvicorn {uvicorn.__version__} "
        f"(h11 unless httptools is installed), {platform.system()} {platform.release()}"
    )


def render(
    inproc: list[dict[str, Any]], server: list[dict[str, Any]] | None, meta: dict[str, Any]
) -> str:
    lines = [
        f"Measured {meta['date']} on: {meta['machine']}.",
        "",
        f"In process: best of {meta['rounds']} rounds of {meta['n']} requests, after warm-up; "
        "the variants take turns round by round, timed by the process's CPU clock. "
        "A streamed request is the same prompt with `stream: true`. *Held* is the most inner "
        "chunks ever produced before the next outgoing message: a small constant means events "
        "flow as they come (a buffering layer would hold them all).",
        "",
        "| variant | µs/request | ratio | added µs | µs/streamed request | added µs/chunk "
        "| chunks | held |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in inproc:
        lines.append(
            f"| {r['variant']} ({r['description']}) | {r['json_us']:.1f} | {r['json_ratio']:.2f} "
            f"| {r['added_us']:.1f} | {r['stream_us']:.1f} | {r['added_per_chunk_us']:.2f} "
            f"| {r['chunks']} | {r['max_held']} |"
        )
    if server:
        lines += [
            "",
            f"Over uvicorn (one worker, 127.0.0.1), load from a separate process with "
            f"`{meta['loader']}`, {meta['duration']:g} s per run, median of "
            f"{meta['server_rounds']} interleaved round(s); non-streaming requests; latency in µs.",
            "",
            "| variant | c=1 p50 | c=1 p99 | c=1 RPS | c=32 p50 | c=32 p99 | c=32 RPS "
            "| RPS ratio c=1 | RPS ratio c=32 |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in server:
            lines.append(
                f"| {r['variant']} | {r['c1_p50_us']:.0f} | {r['c1_p99_us']:.0f} "
                f"| {r['c1_rps']:.0f} | {r['c32_p50_us']:.0f} | {r['c32_p99_us']:.0f} "
                f"| {r['c32_rps']:.0f} | {r['c1_rps_ratio']:.2f} | {r['c32_rps_ratio']:.2f} |"
            )
    full = next(r for r in inproc if r["variant"] == "full")
    verdicts = [
        "",
        "Targets for the full stack (`full`):",
        "",
        f"- added p50 per non-streaming request in process <= 150 µs: **{full['added_us']:.1f} µs**"
        f" ({'met' if full['added_us'] <= 150 else 'missed'})",
        f"- no added buffering of streams: **at most {full['max_held']} of {full['chunks']} inner "
        f"chunks held** ({'met' if full['max_held'] <= 3 < full['chunks'] else 'check'})",
    ]
    if server:
        sfull = next(r for r in server if r["variant"] == "full")
        worst = min(sfull["c1_rps_ratio"], sfull["c32_rps_ratio"])
        verdicts.append(
            f"- >= 75% of the bare app's RPS over uvicorn: **{sfull['c1_rps_ratio']:.0%} at c=1, "
            f"{sfull['c32_rps_ratio']:.0%} at c=32** ({'met' if worst >= 0.75 else 'missed'})"
        )
    return "\n".join(lines + verdicts) + "\n"


def write_docs(table: str) -> None:
    text = DOCS.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{DOCS} has no {START} ... {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOCS.write_text(f"{head}{START}\n{table}{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts (smoke run)")
    parser.add_argument("--no-server", action="store_true", help="skip the uvicorn part")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("-n", type=int, default=2000, help="requests per in-process round")
    parser.add_argument("--rounds", type=int, default=5, help="in-process rounds (best of)")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per server run")
    parser.add_argument("--server-rounds", type=int, default=1)
    parser.add_argument("--loader", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    # internal modes: one server process, one Python load process
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve:
        serve(args.serve, args.port)
        return 0
    if args.load:
        body = sys.stdin.buffer.read()
        result = asyncio.run(
            _python_load(args.load, body, os.environ[KEY_ENV], args.concurrency, args.duration)
        )
        print(json.dumps(result))
        return 0

    names = [n for n in args.variants.split(",") if n]
    unknown = set(names) - VARIANTS.keys()
    if unknown or "bare" not in names or "full" not in names:
        parser.error(f"variants must include bare and full; unknown: {sorted(unknown)}")
    names = ["bare", *[n for n in names if n != "bare"]]
    n, rounds = (50, 2) if args.quick else (args.n, args.rounds)
    key = generate_key("live")[0]
    inproc = asyncio.run(in_process(names, key, n, rounds))
    server = None
    loader = args.loader
    if loader == "auto":
        loader = "wrk" if shutil.which("wrk") else "python"
    if not args.no_server:
        server_names = [v for v in names if v in SERVER_VARIANTS]
        server = over_uvicorn(server_names, key, args.duration, args.server_rounds, loader)
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "n": n,
        "rounds": rounds,
        "duration": args.duration,
        "server_rounds": args.server_rounds,
        "loader": "wrk -t1" if loader == "wrk" else "python httpx (fallback)",
    }
    table = render(inproc, server, meta)
    print(table)
    if args.write_docs:
        write_docs(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
