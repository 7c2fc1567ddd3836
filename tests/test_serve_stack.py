"""``akgate serve``'s server stack: no Nagle stalls, a choice of loop and parser, ``--workers``.

Without ``TCP_NODELAY`` on accepted connections, each response's second write (the body after the
headers) waits for the client's delayed ACK: ~40 ms per request on Linux, whatever the load.
"""

from __future__ import annotations

import signal
import statistics
import time
from pathlib import Path

import httpx
import openai
import pytest

from akgate import MemoryKeyStore
from akgate._serve import ServeConfig, _uvicorn_options, build_app
from akgate.cli import build_parser
from akgate.providers import UpstreamProvider
from tests.support.servers import free_port
from tests.test_serve import MESSAGES, innermost, start_serve, stop

#: Linux's minimum delayed-ACK timeout; a stalled request takes at least this long.
_DELAYED_ACK_S = 0.040


@pytest.mark.server
@pytest.mark.parametrize(
    "stack", [("--loop", "asyncio", "--http", "h11"), ("--loop", "uvloop", "--http", "httptools")]
)
def test_sequential_keep_alive_requests_do_not_wait_for_delayed_acks(
    stack: tuple[str, ...], tmp_path: Path
) -> None:
    process, reader, base_url, key = start_serve(free_port(), tmp_path, *stack)
    try:
        assert key is not None
        headers = {"authorization": f"Bearer {key}"}
        body = {"model": "demo", "messages": MESSAGES}
        timings: list[float] = []
        with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
            client.post("/chat/completions", json=body).raise_for_status()  # warm-up
            for _ in range(50):
                started = time.perf_counter()
                response = client.post("/chat/completions", json=body)
                timings.append(time.perf_counter() - started)
                assert response.status_code == 200
        # One connection for all of them, so every request after the first is a keep-alive one.
        # A stalled server takes >= 50 x 40 ms; a healthy one a few ms each even on a busy machine.
        assert statistics.median(timings) < _DELAYED_ACK_S / 2, timings
        assert sum(timings) < 50 * _DELAYED_ACK_S / 2, timings
    finally:
        stop(process, reader)


def _children(pid: int) -> list[str]:
    """The command lines of ``pid``'s child processes (Linux /proc)."""
    lines = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            lines.append(cmdline.replace(b"\0", b" ").decode())
    return lines


@pytest.mark.server
def test_workers_serve_from_several_processes_and_exit_zero(tmp_path: Path) -> None:
    process, reader, base_url, key = start_serve(free_port(), tmp_path, "--workers", "2")
    try:
        assert key is not None
        with openai.OpenAI(base_url=base_url, api_key=key, max_retries=0) as client:
            for _ in range(4):  # keys come from the one SQLite store every worker opens
                completion = client.chat.completions.create(model="demo", messages=MESSAGES)
                assert completion.choices[0].message.content
            assert client.responses.create(model="demo", input="ping").output_text
        workers = [line for line in _children(process.pid) if "spawn_main" in line]
        assert len(workers) == 2, _children(process.pid)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:  # the parent stops its workers (a SIGKILL would orphan them)
            process.terminate()
            process.wait(timeout=15)
        stop(process, reader)


def test_workers_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    from akgate._serve import serve

    assert serve(ServeConfig(workers=0)) == 2
    assert "--workers" in capsys.readouterr().err


def test_cli_chooses_the_loop_the_parser_and_the_workers() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.loop, args.http, args.workers) == ("auto", "auto", 1)
    args = build_parser().parse_args(
        ["serve", "--loop", "asyncio", "--http", "h11", "--workers", "3"]
    )
    assert (args.loop, args.http, args.workers) == ("asyncio", "h11", 3)
    options = _uvicorn_options(ServeConfig(loop=args.loop, http=args.http))
    assert (options["loop"], options["http"]) == ("asyncio", "h11")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--loop", "trio"])


def test_upstream_timeouts_reach_the_provider() -> None:
    args = build_parser().parse_args(
        [
            *("serve", "--upstream", "http://127.0.0.1:9/v1", "--model", "m"),
            *("--connect-timeout", "2", "--first-byte-timeout", "30", "--idle-timeout", "5"),
            *("--total-timeout", "600"),
        ]
    )
    config = ServeConfig(
        upstream=args.upstream,
        models=tuple(args.model),
        connect_timeout=args.connect_timeout,
        first_byte_timeout=args.first_byte_timeout,
        idle_timeout=args.idle_timeout,
        total_timeout=args.total_timeout,
    )
    provider = innermost(build_app(config, keys=MemoryKeyStore()))
    assert isinstance(provider, UpstreamProvider)
    assert (provider.first_byte_timeout, provider.idle_timeout) == (30, 5)
    assert provider.total_timeout == 600
    assert provider.client.options.connect_timeout == 2
    defaults = build_parser().parse_args(["serve"])
    assert (defaults.first_byte_timeout, defaults.idle_timeout) == (120, 120)
    assert defaults.total_timeout is None
