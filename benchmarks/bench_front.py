"""CPU cost of the layers in front of routing, each alone and together, over a trivial app.

    python benchmarks/bench_front.py [-n 4000] [--rounds 5]

``RequestBodyTimeout``, ``SSEKeepAlive``, ``APIKeyAuth`` (memory store) and ``RequestValidation``
(chat, and Responses with a message-list ``input``) wrap an app that reads the body and answers a
small JSON object (about a microsecond). The variants take turns round by round; each figure is
the best round's process CPU per request minus the trivial app's, in microseconds, with the
ratio to the trivial app beside it. The loop lets the event loop run between requests, as a
server's does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "middleware"), str(HERE)]

from _harness import machine, make_scope  # noqa: E402

from akgate import RequestBodyTimeout, SSEKeepAlive  # noqa: E402
from akgate.auth import APIKeyAuth, MemoryKeyStore  # noqa: E402
from akgate.auth._keys import generate_key  # noqa: E402
from akgate.validation import RequestValidation  # noqa: E402

PROMPT = "Tell me about the weather in Paris today in a few sentences."
CHAT = {"model": "demo", "messages": [{"role": "user", "content": PROMPT}]}
RESPONSES = {"model": "demo", "input": [{"role": "user", "content": PROMPT}]}
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json")],
}
ANSWER = {"type": "http.response.body", "body": b"{}", "more_body": False}


async def trivial(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send(START)
    await send(ANSWER)


async def noop_send(message: Any) -> None:
    pass


async def per_request(app: Any, scope: dict[str, Any], body: bytes, n: int) -> float:
    message = {"type": "http.request", "body": body, "more_body": False}

    async def receive() -> dict[str, Any]:
        return message

    started = time.process_time()
    for _ in range(n):
        await app(dict(scope), receive, noop_send)
        await asyncio.sleep(0)
    return (time.process_time() - started) / n * 1e6


async def main(n: int, rounds: int) -> None:
    key = generate_key("live")[0]
    store = MemoryKeyStore.from_keys([key])
    auth = [(b"authorization", b"Bearer " + key.encode())]
    chat = json.dumps(CHAT).encode()
    responses = json.dumps(RESPONSES).encode()
    chat_scope = make_scope("/v1/chat/completions", chat, headers=auth)
    responses_scope = make_scope("/v1/responses", responses, headers=auth)
    variants: dict[str, tuple[Any, dict[str, Any], bytes]] = {
        "trivial app": (trivial, chat_scope, chat),
        "RequestBodyTimeout": (RequestBodyTimeout(trivial), chat_scope, chat),
        "SSEKeepAlive": (SSEKeepAlive(trivial), chat_scope, chat),
        "APIKeyAuth (memory store)": (APIKeyAuth(trivial, store=store), chat_scope, chat),
        "RequestValidation, chat": (RequestValidation(trivial), chat_scope, chat),
        "RequestValidation, responses": (RequestValidation(trivial), responses_scope, responses),
        "all four, chat": (
            RequestBodyTimeout(SSEKeepAlive(APIKeyAuth(RequestValidation(trivial), store=store))),
            chat_scope,
            chat,
        ),
    }
    for app, scope, body in variants.values():
        await per_request(app, scope, body, n // 4)
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(rounds):
        for name, (app, scope, body) in variants.items():
            best[name] = min(best[name], await per_request(app, scope, body, n))
    base = best["trivial app"]
    print(f"Measured on: {machine()}")
    print(f"Best of {rounds} rounds of {n} requests, process CPU.\n")
    print("| variant | µs/request | ratio | added µs |")
    print("|---|---:|---:|---:|")
    for name, value in best.items():
        print(f"| {name} | {value:.2f} | {value / base:.2f} | {value - base:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.n, args.rounds))
