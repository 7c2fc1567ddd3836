"""Peer benchmark: ``akgate serve --upstream`` (and LiteLLM's proxy) over one fixed fake upstream.

    python benchmarks/bench_peer.py                     # about 2 minutes
    python benchmarks/bench_peer.py --duration 1 --rounds 1 --quick
    python benchmarks/bench_peer.py --baseline ../old/middleware   # + an older akgate, same run

Every system runs as its own process, the way a user runs it: the bare fake upstream, ``python -m
akgate serve --upstream`` (the real entry point, one worker) and, when ``litellm`` is on PATH (or
``--litellm PATH``), LiteLLM's proxy over the same upstream. A load generator in a separate
process (asyncio, keep-alive connections) runs each scenario for a fixed time; systems are
interleaved round by round. Per system and scenario it prints RPS, p50/p99 latency, time to first
byte, and the gateway's CPU per request from ``/proc/PID/stat`` (user + system, read before and
after the run: stable on a noisy machine, where latency is not), with ratios to the bare upstream.

The ``demo ...`` scenarios compare ``akgate serve`` over its embedded demo model (no pause between
tokens) with the bare demo app on uvicorn: what the whole default stack costs an app that answers
by itself. ``--baseline DIR`` adds ``akgate serve`` rows run from another checkout's package, for
before/after figures taken in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import machine  # benchmarks/ (this script's folder)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODEL = "m"
STREAM_CHUNKS = 20
DEMO_MODEL = "demo"
#: ``akgate serve`` options that turn off what the bare demo app does not do at all (metrics,
#: tracing, health paths, the response store); auth, validation, routing, the adapters, the spend
#: ledger and the access log stay (``--no-access-log`` would hand the line to uvicorn instead).
LEAN_OPTIONS = (
    "--no-metrics",
    "--no-tracing",
    "--no-health",
    "--responses-store",
    "off",
)
SCENARIOS: dict[str, tuple[str, dict[str, Any], int]] = {
    # name: (path, body, concurrency); "demo ..." scenarios run against the demo systems
    "chat JSON c=1": (
        "/v1/chat/completions",
        {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
        1,
    ),
    "chat JSON c=32": (
        "/v1/chat/completions",
        {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
        32,
    ),
    "chat stream c=8": (
        "/v1/chat/completions",
        {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True},
        8,
    ),
    "responses stream c=8": (
        "/v1/responses",
        {"model": MODEL, "input": "hi", "stream": True},
        8,
    ),
    "demo chat JSON c=1": (
        "/v1/chat/completions",
        {"model": DEMO_MODEL, "messages": [{"role": "user", "content": "hi"}]},
        1,
    ),
    "demo chat JSON c=32": (
        "/v1/chat/completions",
        {"model": DEMO_MODEL, "messages": [{"role": "user", "content": "hi"}]},
        32,
    ),
}


def _is_demo(scenario: str) -> bool:
    return scenario.startswith("demo ")


# --- the fixed fake upstream (its own process) -----------------------------------------------


def _upstream_answers() -> dict[str, bytes]:
    def whole(body: Any, content_type: bytes = b"application/json") -> bytes:
        data = json.dumps(body).encode()
        return (
            b"HTTP/1.1 200 OK\r\ncontent-type: " + content_type + b"\r\ncontent-length: "
            + str(len(data)).encode() + b"\r\n\r\n" + data
        )  # fmt: skip

    def chunked(events: list[bytes]) -> bytes:
        body = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
        return head + b"transfer-encoding: chunked\r\n\r\n" + body

    chat = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        body = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": "tok "}) for _ in range(STREAM_CHUNKS)]
    usage = {"prompt_tokens": 5, "completion_tokens": STREAM_CHUNKS, "total_tokens": 25}
    events += [chunk({}, "stop", usage=usage), b"data: [DONE]\n\n"]

    def event(kind: str, **body: Any) -> bytes:
        return (
            f"event: {kind}\ndata: ".encode()
            + json.dumps({"type": kind, **body}).encode()
            + (b"\n\n")
        )

    response = {"id": "resp_1", "object": "response", "model": MODEL, "status": "in_progress"}
    done = {**response, "status": "completed", "output": [], "usage": None}
    responses = [event("response.created", response=response, sequence_number=0)]
    responses += [
        event(
            "response.output_text.delta",
            item_id="msg_1",
            output_index=0,
            content_index=0,
            delta="tok ",
            sequence_number=i + 1,
        )
        for i in range(STREAM_CHUNKS)
    ]
    responses.append(event("response.completed", response=done, sequence_number=99))
    models = {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "bench"}]}
    return {
        "models": whole(models),
        "chat": whole(chat),
        "stream": chunked(events),
        "responses": chunked(responses),
    }


class _UpstreamProtocol(asyncio.Protocol):
    answers: dict[str, bytes] = {}

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buffer = b""
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            path = head.split(" ", 2)[1]
            streamed = b'"stream":true' in body.replace(b" ", b"")
            if path.endswith("/models"):
                answer = self.answers["models"]
            elif path.endswith("/responses"):
                answer = self.answers["responses"]
            else:
                answer = self.answers["stream" if streamed else "chat"]
            self.transport.write(answer)


async def _serve_upstream(port: int) -> None:
    _UpstreamProtocol.answers = _upstream_answers()
    server = await asyncio.get_running_loop().create_server(
        _UpstreamProtocol, "127.0.0.1", port, backlog=1024
    )
    print("ready", server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


# --- the load generator (its own process) ----------------------------------------------------


async def _one_connection(
    port: int, request: bytes, deadline: float, samples: list[tuple[float, float]]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            first = time.perf_counter()
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
            lower = head.lower()
            match = re.search(rb"content-length: *(\d+)", lower)
            if match:
                await reader.readexactly(int(match.group(1)))
            else:  # chunked
                while True:
                    size = int((await reader.readline()).strip().split(b";")[0], 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            samples.append((first - started, time.perf_counter() - started))
    finally:
        writer.close()


async def _load(port: int, path: str, body: bytes, key: str, conc: int, duration: float) -> Any:
    headers = [
        f"POST {path} HTTP/1.1",
        f"host: 127.0.0.1:{port}",
        "content-type: application/json",
        f"content-length: {len(body)}",
    ]
    if key:
        headers.append(f"authorization: Bearer {key}")
    request = ("\r\n".join(headers) + "\r\n\r\n").encode() + body
    samples: list[tuple[float, float]] = []
    # Warm-up: one request per connection outside the measured window.
    await asyncio.gather(
        *(_one_connection(port, request, time.perf_counter() + 0.2, []) for _ in range(conc))
    )
    started = time.perf_counter()
    deadline = started + duration
    await asyncio.gather(*(_one_connection(port, request, deadline, samples) for _ in range(conc)))
    elapsed = time.perf_counter() - started
    totals = sorted(total for _, total in samples)
    firsts = sorted(first for first, _ in samples)
    return {
        "n": len(samples),
        "elapsed": elapsed,
        "p50": totals[len(totals) // 2],
        "p99": totals[min(len(totals) - 1, int(len(totals) * 0.99))],
        "ttfb": firsts[len(firsts) // 2],
    }


# --- orchestration ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its reaped children (from /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


class System:
    def __init__(
        self,
        name: str,
        port: int,
        process: subprocess.Popen[bytes],
        key: str,
        *,
        demo: bool = False,
        bare: bool = False,
    ) -> None:
        self.name, self.port, self.process, self.key = name, port, process, key
        #: Serves the demo scenarios (else the upstream ones); the bare one is the ratios' base.
        self.demo, self.bare = demo, bare


def _start_upstream() -> System:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--upstream-server", str(port)], stdout=subprocess.DEVNULL
    )
    _wait_port(port, process)
    return System("bare upstream", port, process, "", bare=True)


def _start_demo(code: Path) -> System:
    """The demo model alone on uvicorn (one worker, the same loop and parser as akgate serve)."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--demo-server", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(code)},
    )
    _wait_port(port, process)
    return System("bare demo app", port, process, "", demo=True, bare=True)


def _start_akgate(
    upstream: int | None,
    home: str,
    *,
    code: Path = ROOT / "middleware",
    label: str = "",
    options: tuple[str, ...] = (),
) -> System:
    """``python -m akgate serve`` over the upstream, or over the demo model (``upstream=None``,
    no pause between its tokens), with the akgate package found in ``code``."""
    port = _free_port()
    env = {**os.environ, "AKGATE_HOME": home, "PYTHONPATH": str(code)}
    env.pop("AKGATE_API_KEYS", None)
    banner = Path(home) / "banner.txt"
    if upstream is None:
        backend = ["--token-delay-ms", "0"]
    else:
        backend = ["--upstream", f"http://127.0.0.1:{upstream}/v1", "--model", MODEL]
    with banner.open("wb") as out:  # a file, not a pipe: the server never blocks on it
        process = subprocess.Popen(
            [sys.executable, "-m", "akgate", "serve", "--port", str(port), *backend, *options],
            stdout=out,
            stderr=subprocess.DEVNULL,
            env=env,
        )
    key = ""
    deadline = time.monotonic() + 60
    while not key and time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("akgate serve exited")
        match = re.search(r"(ak_test_\w+)", banner.read_text())
        key = match.group(1) if match else ""
        time.sleep(0.1)
    _wait_port(port, process)
    name = "akgate serve" + (" (demo)" if upstream is None else "") + label
    return System(name, port, process, key, demo=upstream is None)


def _start_litellm(binary: str, upstream: int, workdir: str) -> System:
    port = _free_port()
    master_key = "sk-" + secrets.token_hex(32)
    config = Path(workdir) / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: http://127.0.0.1:{upstream}/v1\n"
        "      api_key: sk-bench\n"
    )
    process = subprocess.Popen(
        [binary, "--config", str(config), "--port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={
            **os.environ,
            "LITELLM_LOG": "ERROR",
            "LITELLM_TELEMETRY": "False",
            "LITELLM_MASTER_KEY": master_key,  # auth on, as for akgate
        },
    )
    _wait_port(port, process, timeout=180)
    return System("LiteLLM proxy", port, process, master_key)


def _measure(system: System, scenario: str, duration: float) -> dict[str, Any]:
    path, body, conc = SCENARIOS[scenario]
    command = [
        *(sys.executable, __file__, "--load", str(system.port), path, json.dumps(body)),
        *(system.key or "-", str(conc), str(duration)),
    ]
    before = _cpu_seconds(system.process.pid)
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{system.name}, {scenario}: {done.stderr.strip()[-500:]}")
    output = done.stdout
    after = _cpu_seconds(system.process.pid)
    result: dict[str, Any] = json.loads(output)
    result["cpu"] = after - before
    return result


def _summary(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Medians over the rounds; CPU is the total over the rounds divided by all requests."""
    n = sum(run["n"] for run in runs)
    return {
        "rps": statistics.median(run["n"] / run["elapsed"] for run in runs),
        "p50_ms": statistics.median(run["p50"] for run in runs) * 1000,
        "p99_ms": statistics.median(run["p99"] for run in runs) * 1000,
        "ttfb_ms": statistics.median(run["ttfb"] for run in runs) * 1000,
        "cpu_ms": sum(run["cpu"] for run in runs) / n * 1000 if n else float("nan"),
        "n": n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds")
    parser.add_argument("--litellm", help="the litellm binary (default: on PATH)")
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument("--no-demo", action="store_true", help="skip the embedded-demo scenarios")
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="also run akgate serve with the akgate package found in DIR (another checkout's "
        "middleware/): before/after rows measured in the same run",
    )
    parser.add_argument("--quick", action="store_true", help="chat JSON c=1 only (and its demo)")
    parser.add_argument(
        "--lean-demo",
        action="store_true",
        help="also run akgate serve over the demo without the operations layers and the "
        "response store (" + " ".join(LEAN_OPTIONS) + "): the layers' share of the gap",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()
    scenarios = ["chat JSON c=1", "demo chat JSON c=1"] if args.quick else list(SCENARIOS)
    if args.no_demo:
        scenarios = [name for name in scenarios if not _is_demo(name)]
    baseline = Path(args.baseline).resolve() if args.baseline else None
    with tempfile.TemporaryDirectory(prefix="akgate-peer-") as workdir:
        upstream = _start_upstream()
        systems = [upstream]
        litellm = None if args.no_litellm else (args.litellm or shutil.which("litellm"))
        try:
            homes = iter(Path(workdir, str(n)) for n in range(8))

            def home() -> str:
                path = next(homes)
                path.mkdir()
                return str(path)

            if baseline is not None:
                systems.append(
                    _start_akgate(upstream.port, home(), code=baseline, label=", before")
                )
            systems.append(_start_akgate(upstream.port, home()))
            if litellm:
                systems.append(_start_litellm(litellm, upstream.port, workdir))
            if any(_is_demo(name) for name in scenarios):
                systems.append(_start_demo(ROOT / "middleware"))
                if baseline is not None:
                    systems.append(_start_akgate(None, home(), code=baseline, label=", before"))
                systems.append(_start_akgate(None, home()))
                if args.lean_demo:
                    lean = _start_akgate(None, home(), label=", lean", options=LEAN_OPTIONS)
                    systems.append(lean)
            results: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for _ in range(args.rounds):
                for scenario in scenarios:
                    for system in systems:
                        if system.demo != _is_demo(scenario):
                            continue
                        run = _measure(system, scenario, args.duration)
                        results.setdefault((system.name, scenario), []).append(run)
        finally:
            for system in systems:
                system.process.terminate()
                system.process.wait(timeout=20)
    print(f"Machine: {machine()}")
    print(f"{args.rounds} interleaved round(s) of {args.duration:g} s per system and scenario.")
    if not litellm:
        print("LiteLLM proxy: not installed (pip install 'litellm[proxy]'), not measured.")
    report: dict[str, Any] = {}
    for scenario in scenarios:
        print(f"\n{scenario}")
        print(
            "| system | RPS | RPS ratio | p50 ms | p99 ms | TTFB ms | gateway CPU ms/req |\n"
            "|---|---:|---:|---:|---:|---:|---:|"
        )
        measured = [s for s in systems if s.demo == _is_demo(scenario)]
        bare = _summary(results[(next(s for s in measured if s.bare).name, scenario)])
        for system in measured:
            row = _summary(results[(system.name, scenario)])
            report[f"{system.name} / {scenario}"] = row
            print(
                f"| {system.name} | {row['rps']:.0f} | {row['rps'] / bare['rps']:.3f} "
                f"| {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['ttfb_ms']:.2f} "
                f"| {row['cpu_ms']:.3f} |"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


def _serve_demo(port: int) -> None:
    import uvicorn

    from akgate.providers import DemoModel

    # What akgate serve does after start-up too, so the two differ only by the stack.
    gc.collect()
    gc.freeze()
    uvicorn.run(
        DemoModel(token_delay=0),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--upstream-server":
        try:
            import uvloop

            uvloop.run(_serve_upstream(int(sys.argv[2])))
        except ImportError:
            asyncio.run(_serve_upstream(int(sys.argv[2])))
    elif len(sys.argv) > 2 and sys.argv[1] == "--demo-server":
        _serve_demo(int(sys.argv[2]))
    elif len(sys.argv) > 2 and sys.argv[1] == "--load":
        port, path, body, key, conc, duration = sys.argv[2:8]
        try:
            from uvloop import run as run_loop
        except ImportError:
            run_loop = asyncio.run
        outcome = run_loop(
            _load(
                int(port),
                path,
                body.encode(),
                "" if key == "-" else key,
                int(conc),
                float(duration),
            )
        )
        print(json.dumps(outcome))
    else:
        main()
