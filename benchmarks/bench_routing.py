"""Added time per request of ``Routing`` (routing + routing_metadata) over the bare app.

In process, as in spec/asgi-notes.md §4.5: a canned scope, a ``receive`` that yields the body
and then parks, a no-op ``send``; best of several rounds. Time is process CPU time, so that other
processes on a shared machine do not inflate the numbers. The stream overhead per chunk is the
slope between a short and a long stream, so the per-request part cancels out.

    python benchmarks/bench_routing.py [--requests 5000] [--rounds 5] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "middleware"))

from _harness import Parked, noop_send
from _harness import make_scope as canned_scope

from akgate.routing import Catalog, Routing

REQUEST = json.dumps(
    {"model": "bench", "messages": [{"role": "user", "content": "Hello there, how are you?"}]},
    separators=(",", ":"),
).encode()
STREAM_REQUEST = json.dumps(
    {
        "model": "bench",
        "messages": [{"role": "user", "content": "Hello there, how are you?"}],
        "stream": True,
    },
    separators=(",", ":"),
).encode()
COMPLETION = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "I am fine, thank you."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
    },
    separators=(",", ":"),
).encode()
HEAD = '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"bench"'
FIRST = f'data: {HEAD},"choices":[{{"index":0,"delta":{{"role":"assistant","content":""}}}}]}}\n\n'
TOKEN = (
    f'data: {HEAD},"choices":[{{"index":0,"delta":{{"content":" word"}},'
    '"finish_reason":null}],"usage":null}\n\n'
)
LAST = (
    f'data: {HEAD},"choices":[{{"index":0,"delta":{{}},"finish_reason":"stop"}}]}}\n\n'
    f'data: {HEAD},"choices":[],"usage":{{"prompt_tokens":12,"completion_tokens":50,'
    '"total_tokens":62}}\n\ndata: [DONE]\n\n'
)
CATALOG = Catalog.from_dict(
    {"models": {"bench": {"providers": [{"name": "app", "input_price": 1, "output_price": 2}]}}}
)


def make_app(chunks: int) -> Callable[..., Awaitable[None]]:
    first, token, last = FIRST.encode(), TOKEN.encode(), LAST.encode()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        stream = False
        while True:
            message = await receive()
            if b'"stream":true' in message.get("body", b""):
                stream = True
            if not message.get("more_body"):
                break
        if not stream:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(COMPLETION)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": COMPLETION})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": first, "more_body": True})
        for _ in range(chunks):
            await send({"type": "http.response.body", "body": token, "more_body": True})
        await send({"type": "http.response.body", "body": last, "more_body": False})

    return app


async def run(app: Any, body: bytes, n: int) -> float:
    scope = canned_scope("/v1/chat/completions", body)
    start = time.process_time()
    for _ in range(n):
        await app(dict(scope), Parked(body), noop_send)
        await asyncio.sleep(0)  # the loop runs between requests, as a server's does
    return (time.process_time() - start) / n * 1e6


async def best(app: Any, body: bytes, n: int, rounds: int) -> float:
    await run(app, body, max(50, n // 10))  # warm-up
    return min([await run(app, body, n) for _ in range(rounds)])


async def main(n: int, rounds: int) -> None:
    short, long_ = 10, 110
    results: dict[str, float] = {}
    for label, chunks in (("short", short), ("long", long_)):
        bare = make_app(chunks)
        routed = Routing(bare, catalog=CATALOG, app_provider="app")
        if label == "short":
            results["bare_json"] = await best(bare, REQUEST, n, rounds)
            results["routed_json"] = await best(routed, REQUEST, n, rounds)
        results[f"bare_{label}"] = await best(bare, STREAM_REQUEST, n // 5, rounds)
        results[f"routed_{label}"] = await best(routed, STREAM_REQUEST, n // 5, rounds)
    json_added = results["routed_json"] - results["bare_json"]
    short_added = results["routed_short"] - results["bare_short"]
    long_added = results["routed_long"] - results["bare_long"]
    per_chunk = (long_added - short_added) / (long_ - short)
    per_stream = short_added - per_chunk * (short + 2)
    print(f"loop: {asyncio.get_event_loop_policy().__class__.__name__}, python {sys.version[:6]}")
    print(f"{'variant':<34}{'bare us':>10}{'routed us':>11}{'added us':>10}")
    print(
        f"{'JSON request':<34}{results['bare_json']:>10.2f}{results['routed_json']:>11.2f}"
        f"{json_added:>10.2f}"
    )
    for label, chunks in (("short", short), ("long", long_)):
        bare_v, routed_v = results[f"bare_{label}"], results[f"routed_{label}"]
        name = f"stream, {chunks + 2} body messages"
        print(f"{name:<34}{bare_v:>10.2f}{routed_v:>11.2f}{routed_v - bare_v:>10.2f}")
    print(f"added per streamed chunk (slope):  {per_chunk:.3f} us   (target <= 2 us)")
    print(
        f"added per streamed request (fixed): {per_stream:.2f} us   "
        "(target <= 40 us; issue 11: <= 30 us)"
    )
    print(f"added per JSON request:             {json_added:.2f} us   (target <= 40 us)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.install()
    asyncio.run(main(args.requests, args.rounds))
