"""ResponsesAdapter streaming benchmark: cost per chunk, time to first event, memory per stream.

Run: ``python benchmarks/bench_adapter.py [--chunks 2000] [--streams 1000]``.

Every number is measured in one run against a raw pass-through of the *same* inner stream (the
bare chat app called directly), and printed as a difference and a ratio. Targets (issue 5):
<= 10 us added per chunk, first event within 1 ms of the first inner chunk, <= 30 KB per open
stream.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "middleware"))

from _harness import count_body_messages, stream_app
from _harness import make_scope as canned_scope

from akgate._types import ASGIApp, Scope
from akgate.adapter import ResponsesAdapter

REQUEST = json.dumps({"model": "m", "input": "hi", "stream": True}).encode()


def frames(n: int) -> list[bytes]:
    """A realistic chat stream: role chunk, n content chunks, finish, usage, [DONE]."""
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    out = [
        {
            **base,
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            ],
        }
    ]
    out += [
        {**base, "choices": [{"index": 0, "delta": {"content": f" tok{i}"}, "finish_reason": None}]}
        for i in range(n)
    ]
    out.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    out.append(
        {
            **base,
            "choices": [],
            "usage": {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": n + 5},
        }
    )
    return [f"data: {json.dumps(c)}\n\n".encode() for c in out] + [b"data: [DONE]\n\n"]


def inner_app(
    data: list[bytes], gate: anyio.Event | None = None, marks: dict[str, float] | None = None
) -> ASGIApp:
    # ``gate`` holds the stream open after its first frame (memory test).
    return stream_app(data, gate=gate, marks=marks)


def scope() -> Scope:
    return canned_scope("/v1/responses", REQUEST)


async def run_once(
    app: ASGIApp, marks: dict[str, float] | None = None, done: anyio.Event | None = None
) -> int:
    return await count_body_messages(app, scope(), REQUEST, marks=marks, done=done)


async def per_chunk(n: int, rounds: int) -> tuple[float, float]:
    data = frames(n)
    raw, adapted = inner_app(data), ResponsesAdapter(inner_app(data))
    raw_times, adapter_times = [], []
    for _ in range(rounds):
        for app, times in ((raw, raw_times), (adapted, adapter_times)):
            gc.collect()
            start = time.perf_counter()
            await run_once(app)
            times.append(time.perf_counter() - start)
    return min(raw_times) / n, min(adapter_times) / n


async def first_event(rounds: int) -> tuple[float, float]:
    data = frames(5)
    raw_ttfe, adapter_ttfe = [], []
    for _ in range(rounds):
        for wrap, sink in ((False, raw_ttfe), (True, adapter_ttfe)):
            marks: dict[str, float] = {}
            app = inner_app(data, marks=marks)
            await run_once(ResponsesAdapter(app) if wrap else app, marks)
            sink.append(marks["first_outer"] - marks["first_inner"])
    return statistics.median(raw_ttfe), statistics.median(adapter_ttfe)


async def memory(streams: int, wrap: bool) -> float:
    data = frames(3)
    gate = anyio.Event()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    started = []
    async with anyio.create_task_group() as tg:
        for _ in range(streams):
            ev = anyio.Event()
            started.append(ev)
            app = inner_app(data, gate)
            tg.start_soon(run_once, ResponsesAdapter(app) if wrap else app, None, ev)
        for ev in started:
            await ev.wait()
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - base
        gate.set()
    tracemalloc.stop()
    return used / streams


async def main(chunks: int, streams: int, rounds: int) -> None:
    raw, adapted = await per_chunk(chunks, rounds)
    added = (adapted - raw) * 1e6
    print(
        f"per chunk ({chunks} chunks, best of {rounds}):  raw {raw * 1e6:.2f} us  "
        f"adapter {adapted * 1e6:.2f} us  added {added:.2f} us  ratio {adapted / raw:.2f}x  "
        f"[target <= 10 us added]"
    )
    raw_t, adapter_t = await first_event(rounds * 20)
    print(
        f"first event after first inner chunk (median):  raw {raw_t * 1e6:.1f} us  "
        f"adapter {adapter_t * 1e6:.1f} us  ratio {adapter_t / raw_t:.1f}x  "
        f"[target <= 1000 us]"
    )
    raw_m, adapter_m = await memory(streams, False), await memory(streams, True)
    print(
        f"memory per open stream ({streams} concurrent):  raw {raw_m / 1024:.1f} KB  "
        f"adapter {adapter_m / 1024:.1f} KB  added {(adapter_m - raw_m) / 1024:.1f} KB  "
        f"ratio {adapter_m / raw_m:.1f}x  [target <= 30 KB]"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    anyio.run(main, args.chunks, args.streams, args.rounds)
