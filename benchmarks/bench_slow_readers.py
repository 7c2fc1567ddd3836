"""Memory of the gateway process while clients do not read one large stream event.

A chat provider answers every streaming request with a single 10 MiB SSE event (then its usage
and ``[DONE]``). N clients send the request over raw sockets and never read. The gateway
(``gateway(provider)`` over a real uvicorn, one process) is measured from ``/proc``: resident
memory before the clients, and once every client's event has been produced, with the response
sent in bounded pieces (``akgate._pieces``, the default) and as one body message (the server
then buffers the whole event per connection). Both variants run in the same invocation.

    python benchmarks/bench_slow_readers.py [--clients 30] [--event-mib 10]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SERVER = r"""
import json, sys, uvicorn
import akgate.stack as stack
from akgate import gateway

pieces, port, size = sys.argv[1] == "on", int(sys.argv[2]), int(sys.argv[3])
if not pieces:
    stack.piecewise = lambda send, piece=0: send  # one body message per event, as before

head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "big"}
delta = {"index": 0, "delta": {"content": "x" * size}}
EVENT = b"data: " + json.dumps({**head, "choices": [delta]}).encode() + b"\n\n"
usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
TAIL = b"data: " + json.dumps({**head, "choices": [], "usage": usage}).encode()
TAIL += b"\n\ndata: [DONE]\n\n"
SSE = [(b"content-type", b"text/event-stream")]

async def provider(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": SSE})
    await send({"type": "http.response.body", "body": EVENT, "more_body": True})
    await send({"type": "http.response.body", "body": TAIL, "more_body": False})

app = gateway(provider, keys=["%s"], models=["big"], demo=False, auth=True)
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(pieces: bool, clients: int, size: int, key: str) -> tuple[float, float, float]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "middleware")}
    env.pop("AKGATE_API_KEYS", None)
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER % key, "on" if pieces else "off", str(port), str(size)],
        env=env,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        time.sleep(0.5)
        before = rss_mib(server.pid)
        body = json.dumps(
            {"model": "big", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        ).encode()
        request = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        sockets = []
        for _ in range(clients):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(request)
            sockets.append(sock)
        time.sleep(4)  # every event produced; the clients still read nothing
        during = rss_mib(server.pid)
        cpu = cpu_seconds(server.pid)
        for sock in sockets:
            sock.close()
        return before, during, cpu
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--event-mib", type=float, default=10)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "middleware"))
    from akgate.auth._keys import generate_key

    key = generate_key()[0]
    size = int(args.event_mib * 1024 * 1024)
    print(f"{args.clients} clients not reading one {args.event_mib:g} MiB event each")
    print(f"{'variant':<22} {'RSS before':>11} {'RSS during':>11} {'per client':>11} {'CPU s':>7}")
    results = {}
    for pieces in (False, True):
        before, during, cpu = run(pieces, args.clients, size, key)
        name = "pieces of 64 KiB" if pieces else "one message per event"
        results[pieces] = during - before
        per = (during - before) / args.clients
        print(f"{name:<22} {before:>8.0f} MiB {during:>8.0f} MiB {per:>7.1f} MiB {cpu:>7.2f}")
    if results[True] > 0:
        print(f"growth ratio (one message / pieces): {results[False] / results[True]:.2f}")


if __name__ == "__main__":
    main()
