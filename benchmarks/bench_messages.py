"""MessagesAdapter streaming benchmark: cost per chunk and time to first event.

Run: ``python benchmarks/bench_messages.py [--chunks 2000] [--rounds 5]``.

Every number is measured in one run against a raw pass-through of the *same* inner chat stream
(the bare chat app called directly), and printed as a difference and a ratio, with the process
CPU time per stream read from ``/proc/self/stat``. Two streams: text deltas (``text_delta``) and
one tool call's argument fragments (``input_json_delta``). Targets (issue 13): <= 10 us added per
chunk, first event within 1 ms of the first inner chunk.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "middleware"))

from _harness import count_body_messages, stream_app
from _harness import make_scope as canned_scope

from akgate._types import ASGIApp
from akgate.adapter import ResponsesAdapter
from akgate.messages import MessagesAdapter

REQUEST = json.dumps(
    {
        "model": "m",
        "max_tokens": 32000,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
    }
).encode()
RESPONSES_REQUEST = json.dumps({"model": "m", "input": "hi", "stream": True}).encode()
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> float:
    """This process's user + system CPU time, from /proc (clock ticks)."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def frames(n: int, kind: str) -> list[bytes]:
    """A realistic chat stream: role chunk, n content (or tool-argument) chunks, finish, usage."""
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}

    def chunk(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    out = [chunk({"role": "assistant", "content": ""})]
    if kind == "text":
        out += [chunk({"content": f" tok{i}"}) for i in range(n)]
        finish = "stop"
    else:
        call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f"}}
        out.append(chunk({"tool_calls": [{**call, "function": {"name": "f", "arguments": "{"}}]}))
        out += [
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": f'"k{i}": {i}, '}}]})
            for i in range(n)
        ]
        out.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"end": 0}'}}]}))
        finish = "tool_calls"
    out.append(chunk({}, finish))
    usage = {"prompt_tokens": 5, "completion_tokens": n, "total_tokens": n + 5}
    out.append({**base, "choices": [], "usage": usage})
    return [f"data: {json.dumps(c)}\n\n".encode() for c in out] + [b"data: [DONE]\n\n"]


def inner_app(data: list[bytes], marks: dict[str, float] | None = None) -> ASGIApp:
    return stream_app(data, marks=marks)


async def run_once(
    app: ASGIApp,
    marks: dict[str, float] | None = None,
    path: str = "/v1/messages",
    body: bytes = REQUEST,
) -> int:
    return await count_body_messages(app, canned_scope(path, body), body, marks=marks)


async def per_chunk(n: int, rounds: int, kind: str) -> dict[str, tuple[float, float]]:
    """Best wall time and mean CPU time per chunk, raw and adapted."""
    data = frames(n, kind)
    # The idle-ping timer is off: the benchmark measures translation, not a sleeping task.
    apps = {
        "raw": inner_app(data),
        "adapter": MessagesAdapter(inner_app(data), ping_interval=None),
        # The Responses adapter on the same inner stream: a reference measured on this machine.
        "responses": ResponsesAdapter(inner_app(data)),
    }
    wall: dict[str, list[float]] = {name: [] for name in apps}
    cpu: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(rounds):
        for name, app in apps.items():
            gc.collect()
            c0, t0 = cpu_seconds(), time.perf_counter()
            if name == "responses":
                await run_once(app, path="/v1/responses", body=RESPONSES_REQUEST)
            else:
                await run_once(app)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(cpu_seconds() - c0)
    return {name: (min(wall[name]) / n, statistics.mean(cpu[name]) / n) for name in apps}


async def first_event(rounds: int) -> tuple[float, float]:
    data = frames(5, "text")
    raw_ttfe, adapter_ttfe = [], []
    for _ in range(rounds):
        for wrap, sink in ((False, raw_ttfe), (True, adapter_ttfe)):
            marks: dict[str, float] = {}
            app = inner_app(data, marks=marks)
            await run_once(MessagesAdapter(app) if wrap else app, marks)
            sink.append(marks["first_outer"] - marks["first_inner"])
    return statistics.median(raw_ttfe), statistics.median(adapter_ttfe)


async def main(chunks: int, rounds: int) -> None:
    for kind in ("text", "tool"):
        result = await per_chunk(chunks, rounds, kind)
        (raw, raw_cpu), (adapted, adapted_cpu) = result["raw"], result["adapter"]
        reference, reference_cpu = result["responses"]
        print(
            f"per {kind} chunk ({chunks} chunks, best of {rounds}):  raw {raw * 1e6:.2f} us  "
            f"messages {adapted * 1e6:.2f} us  added {(adapted - raw) * 1e6:.2f} us  "
            f"ratio {adapted / raw:.1f}x  [target <= 10 us added]\n"
            f"    same stream through ResponsesAdapter {reference * 1e6:.2f} us "
            f"(messages/responses {adapted / reference:.2f}x);  CPU per chunk (/proc): "
            f"raw {raw_cpu * 1e6:.2f} us  messages {adapted_cpu * 1e6:.2f} us  "
            f"responses {reference_cpu * 1e6:.2f} us"
        )
    raw_t, adapter_t = await first_event(rounds * 20)
    print(
        f"first event after first inner chunk (median):  raw {raw_t * 1e6:.1f} us  "
        f"adapter {adapter_t * 1e6:.1f} us  ratio {adapter_t / raw_t:.1f}x  "
        f"[target <= 1000 us]"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    anyio.run(main, args.chunks, args.rounds)
