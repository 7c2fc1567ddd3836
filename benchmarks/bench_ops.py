"""In-process cost of the operations layers (akgate.ops) per request, against the bare app.

Run from the repository root::

    python benchmarks/bench_ops.py [--n 5000] [--rounds 5]

Each variant calls ``await app(scope, receive, send)`` ``n`` times after a warm-up, best of
``rounds`` (``benchmarks/_harness.py``), for a JSON answer and for a 20-chunk stream; CPU time per
request is read from ``/proc/self/stat`` over the same loop. The access log writes to a logger
with a ``NullHandler`` (formatting included, no I/O); tracing is measured without an SDK (the
no-op tracer most deployments start with) and with the SDK and an in-memory exporter.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "middleware"), str(ROOT)]

from _harness import bench, call_once, make_scope  # noqa: E402  (benchmarks/)

from akgate.ops import AccessLog, HealthChecks, PrometheusMetrics, Tracing  # noqa: E402

BODY = b'{"model":"demo","messages":[{"role":"user","content":"hi"}]}'
RESPONSE = b'{"id":"chatcmpl-1","object":"chat.completion","choices":[]}'
CHUNK = b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
CHUNKS = 20


async def json_app(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"59")],
        }
    )
    await send({"type": "http.response.body", "body": RESPONSE})


async def stream_app(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream")],
        }
    )
    for _ in range(CHUNKS):
        await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


def _cpu_seconds() -> float:
    """utime + stime of this process, from /proc (clock ticks)."""
    with open("/proc/self/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def cpu_per_request(app: Any, scope: dict[str, Any], n: int) -> float:
    start = _cpu_seconds()
    t0 = time.perf_counter()
    done = 0
    while time.perf_counter() - t0 < 1.0 or done < n:  # long enough for the tick resolution
        await call_once(app, scope, BODY)
        done += 1
    return (_cpu_seconds() - start) / done * 1e6


def variants(inner: Any) -> list[tuple[str, Any]]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sdk_tracing = Tracing(inner, tracer_provider=provider)
    return [
        ("bare app", inner),
        ("HealthChecks (pass-through)", HealthChecks(inner, checks={})),
        ("AccessLog (text, NullHandler)", AccessLog(inner)),
        ("AccessLog (json, NullHandler)", AccessLog(inner, format="json")),
        ("PrometheusMetrics", PrometheusMetrics(inner)),
        ("Tracing (no SDK: no-op tracer)", Tracing(inner)),
        ("Tracing (SDK, in-memory exporter)", sdk_tracing),
        (
            "all four (serve's order, no SDK)",
            HealthChecks(PrometheusMetrics(Tracing(AccessLog(inner))), checks={}),
        ),
    ]


async def main(n: int, rounds: int) -> None:
    access = logging.getLogger("akgate.access")
    access.addHandler(logging.NullHandler())
    access.setLevel(logging.INFO)
    access.propagate = False
    scope = make_scope("/v1/chat/completions", BODY)
    print(f"akgate.ops in-process cost (best of {rounds} x {n} calls, python {sys.version[:6]})")
    print(f"{'variant':42} {'kind':7} {'us/req':>8} {'added us':>9} {'cpu us/req':>11}")
    for kind, inner in (("json", json_app), ("stream", stream_app)):
        bare = 0.0
        for name, app in variants(inner):
            per = await bench(app, scope, BODY, n=n, rounds=rounds, warmup=n // 10)
            cpu = await cpu_per_request(app, scope, n)
            bare = per if name == "bare app" else bare
            print(f"{name:42} {kind:7} {per:8.2f} {per - bare:9.2f} {cpu:11.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    asyncio.run(main(options.n, options.rounds))
