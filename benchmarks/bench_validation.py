"""Added time per request of ``RequestValidation`` versus the bare app, printed as ratios.

In process (asgi-notes.md §4.5): ``await app(scope, receive, send)`` in a loop with a canned scope,
a ``receive`` that yields the body and then parks, a no-op ``send``; best of several rounds.
The bare app reads the body and answers a small JSON, as a real endpoint would.

    python benchmarks/bench_validation.py [--rounds 5] [--calls 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "middleware"))

from _harness import json_app
from _harness import make_scope as canned_scope
from pydantic_core import from_json, to_json

from akgate._types import Message, Scope
from akgate.schemas.chat_request import ChatCompletionRequest
from akgate.schemas.responses_request import ResponsesRequest
from akgate.validation import RequestValidation

_TOOL_PARAMS = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
    "required": ["city"],
}

CHAT: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
        {"role": "user", "content": [{"type": "text", "text": "And in Rome?"}]},
    ],
    "tools": [
        {
            "type": "function",
            "function": {"name": name, "description": "Look it up.", "parameters": _TOOL_PARAMS},
        }
        for name in ("get_weather", "get_time")
    ],
    "tool_choice": "auto",
    "temperature": 0.7,
    "max_completion_tokens": 512,
    "stream": False,
    "gateway": {"routing": {"optimize": "cost-focus"}, "metadata": {"tags": ["bench"]}},
}

RESPONSES: dict[str, Any] = {
    "model": "gpt-4o",
    "instructions": "You are a helpful assistant.",
    "input": [
        {"role": "user", "content": "What is the weather in Paris?"},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": '{"temp": 21}'},
        {"role": "user", "content": [{"type": "input_text", "text": "And in Rome?"}]},
    ],
    "tools": [
        {"type": "function", "name": name, "parameters": _TOOL_PARAMS, "strict": False}
        for name in ("get_weather", "get_time")
    ],
    "text": {"format": {"type": "text"}},
    "reasoning": {"effort": "low"},
    "max_output_tokens": 512,
}

ANSWER = to_json({"id": "x", "object": "chat.completion", "choices": []})


bare_app = json_app(ANSWER)


def make_scope(path: str, body: bytes) -> Scope:
    return canned_scope(path, body)


async def _send(message: Message) -> None:
    return None


async def run(app: Any, path: str, body: bytes, calls: int) -> float:
    scope = make_scope(path, body)
    start = time.perf_counter()
    for _ in range(calls):
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # parks, as a server does until the response ends
            raise AssertionError

        await app(scope, receive, _send)
    return (time.perf_counter() - start) / calls * 1e6


def best(app: Any, path: str, body: bytes, rounds: int, calls: int) -> float:
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(run(app, path, body, calls // 10))  # warm-up
        return min(loop.run_until_complete(run(app, path, body, calls)) for _ in range(rounds))
    finally:
        loop.close()


def micro(rounds: int, calls: int) -> None:
    """Where the time goes: parse, validate (dict vs JSON bytes), serialize."""
    for name, payload, model in (
        ("chat", CHAT, ChatCompletionRequest),
        ("responses", RESPONSES, ResponsesRequest),
    ):
        body = to_json(payload)
        steps = {
            "from_json(body)": lambda b=body: from_json(b),
            "model_validate(dict)": lambda p=payload, m=model: m.model_validate(p),
            "model_validate_json(body)": lambda b=body, m=model: m.model_validate_json(b),
            "to_json(dict)": lambda p=payload: to_json(p),
        }
        for step, fn in steps.items():
            best_us = float("inf")
            for _ in range(rounds):
                start = time.perf_counter()
                for _ in range(calls):
                    fn()
                best_us = min(best_us, (time.perf_counter() - start) / calls * 1e6)
            print(f"  {name:<10} {step:<28} {best_us:7.2f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    layer = RequestValidation(bare_app)
    print(f"RequestValidation overhead (best of {args.rounds} x {args.calls} calls, asyncio)")
    print(f"{'request':<12}{'bytes':>7}{'bare us':>10}{'layer us':>10}{'added us':>10}{'ratio':>8}")
    for name, path, payload in (
        ("chat", "/v1/chat/completions", CHAT),
        ("responses", "/v1/responses", RESPONSES),
    ):
        body = to_json(payload)
        bare = best(bare_app, path, body, args.rounds, args.calls)
        wrapped = best(layer, path, body, args.rounds, args.calls)
        print(
            f"{name:<12}{len(body):>7}{bare:>10.2f}{wrapped:>10.2f}"
            f"{wrapped - bare:>10.2f}{wrapped / bare:>7.2f}x"
        )
    print("breakdown:")
    micro(args.rounds, args.calls)


if __name__ == "__main__":
    main()
