from __future__ import annotations

import io
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import openai
import pytest

from akgate._serve import ServeConfig, base_url_for, build_app, print_banner, serve
from akgate.cli import build_parser
from akgate.providers.demo import DemoModel
from akgate.providers.upstream import UpstreamProvider
from tests.support.servers import free_port, run_uvicorn

ROOT = Path(__file__).resolve().parents[1]
MESSAGES = [{"role": "user", "content": "ping"}]


def start_serve(port: int) -> tuple[subprocess.Popen[str], threading.Thread, str]:
    """Start `python -m akgate serve`; return it and the base URL from its banner."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "middleware"), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "akgate", "serve", "--port", str(port), "--token-delay-ms", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=ROOT,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    reader = threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True)
    reader.start()
    while True:
        try:
            line = lines.get(timeout=20)
        except queue.Empty:
            process.kill()
            pytest.fail("akgate serve printed no banner")
        if "Base URL:" in line:
            return process, reader, line.split("Base URL:")[1].strip()


@pytest.mark.server
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_subprocess_answers_the_sdk_and_exits_zero(stop_signal: int) -> None:
    port = free_port()
    process, reader, base_url = start_serve(port)
    try:
        assert base_url == f"http://127.0.0.1:{port}/v1"
        client = openai.OpenAI(base_url=base_url, api_key="any", max_retries=0)
        completion = client.chat.completions.create(model="demo", messages=MESSAGES)
        assert completion.choices[0].message.content == (
            'Hello! I am the akgate demo model. You said: "ping"'
        )
        stream = client.chat.completions.create(model="demo", messages=MESSAGES, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices).endswith(
            '"ping"'
        )
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(timeout=5)
        assert process.stdout is not None
        process.stdout.close()


@pytest.mark.server
def test_openai_sdk_works_against_the_serve_stack_over_uvicorn() -> None:
    with run_uvicorn(build_app(ServeConfig(token_delay_ms=0))) as base:
        client = openai.OpenAI(base_url=base + "/v1", api_key="any", max_retries=0)
        completion = client.chat.completions.create(model="demo-reasoning", messages=MESSAGES)
        assert completion.choices[0].finish_reason == "stop"
        assert completion.model == "demo-reasoning"
        stream = client.chat.completions.create(
            model="demo",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == 'Hello! I am the akgate demo model. You said: "ping"'
    assert chunks[-1].usage is not None


def test_build_app_serves_the_demo_by_default() -> None:
    app = build_app(ServeConfig(token_delay_ms=20))
    assert isinstance(app, DemoModel)
    assert app.token_delay == pytest.approx(0.02)


def test_build_app_fronts_an_upstream_with_the_key_from_the_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MY_KEY", "sk-abc")
    app = build_app(ServeConfig(upstream="http://127.0.0.1:9/v1", upstream_key_env="MY_KEY"))
    assert isinstance(app, UpstreamProvider)
    assert (b"authorization", b"Bearer sk-abc") in app._extra_headers


def test_banner_shows_the_url_and_copy_paste_examples() -> None:
    out = io.StringIO()
    print_banner("http://127.0.0.1:8000/v1", "ak_live_x", file=out)
    text = out.getvalue()
    assert "Base URL: http://127.0.0.1:8000/v1" in text
    assert "curl http://127.0.0.1:8000/v1/chat/completions" in text
    assert 'OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="ak_live_x")' in text


def test_wildcard_hosts_are_shown_as_loopback() -> None:
    assert base_url_for("0.0.0.0", 80) == "http://127.0.0.1:80/v1"
    assert base_url_for("::", 80) == "http://[::1]:80/v1"


def test_missing_uvicorn_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert serve(ServeConfig()) == 1
    assert "pip install 'akgate[server]'" in capsys.readouterr().err


def test_cli_registers_serve_with_its_options() -> None:
    args = build_parser().parse_args(
        ["serve", "--port", "9000", "--upstream", "http://x/v1", "--token-delay-ms", "3"]
    )
    assert (args.port, args.upstream, args.token_delay_ms) == (9000, "http://x/v1", 3.0)
    assert args.upstream_key_env == "OPENAI_API_KEY"
    assert callable(args.handler)
