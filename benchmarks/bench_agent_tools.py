"""CPU cost of the agent tool mapping (namespace / custom tools) in the Responses adapter.

Measures, in the same run, the pure mapping functions on a Codex-sized request (60 tools of
about 700 bytes, 46 KB in all): a request whose tools are all plain functions (the mapping's fast
path: names map to themselves), and the same request with five of them in a ``namespace`` and one
``custom`` tool. Prints CPU µs per call (``time.process_time``, best of several rounds) and the
ratio of the agent-shaped request to the plain one.

    python benchmarks/bench_agent_tools.py [--rounds 5] [--calls 3000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "middleware"))

from akgate.adapter import AdapterOptions, chat_to_response, to_chat_request


def function(name: str) -> dict[str, Any]:
    return {
        "type": "function",
        "name": name,
        "description": "x" * 600,
        "parameters": {"type": "object", "properties": {"p": {"type": "string"}}},
    }


def request(agent: bool) -> dict[str, Any]:
    tools: list[dict[str, Any]] = [function(f"tool_{i}") for i in range(55 if agent else 60)]
    if agent:
        members = [function(f"member_{i}") for i in range(5)]
        tools.append({"type": "namespace", "name": "ns", "description": "d", "tools": members})
        tools.append({"type": "custom", "name": "apply_patch"})
    return {
        "model": "m",
        "input": [{"role": "developer", "content": "d" * 2000}, {"role": "user", "content": "hi"}],
        "tools": tools,
        "stream": True,
    }


def completion(name: str) -> dict[str, Any]:
    call = {"id": "c1", "type": "function", "function": {"name": name, "arguments": "{}"}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    return {"choices": [{"message": message, "finish_reason": "tool_calls"}], "usage": {}}


def best(fn: Callable[[], object], rounds: int, calls: int) -> float:
    for _ in range(200):
        fn()
    times = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(calls):
            fn()
        times.append((time.process_time() - start) / calls * 1e6)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    options = AdapterOptions()
    plain, agent = request(False), request(True)
    print(f"request bytes: plain {len(json.dumps(plain))}, agent {len(json.dumps(agent))}")
    print(f"{'mapping':<36}{'plain us':>10}{'agent us':>10}{'ratio':>8}")
    cases: list[tuple[str, Callable[[dict[str, Any]], object]]] = [
        ("to_chat_request", lambda r: to_chat_request(r, options)),
        (
            "chat_to_response (one tool call)",
            lambda r: chat_to_response(completion("ns__member_1"), r),
        ),
    ]
    for name, fn in cases:
        a = best(lambda: fn(plain), args.rounds, args.calls)
        b = best(lambda: fn(agent), args.rounds, args.calls)
        print(f"{name:<36}{a:>10.1f}{b:>10.1f}{b / a:>7.2f}x")


if __name__ == "__main__":
    main()
