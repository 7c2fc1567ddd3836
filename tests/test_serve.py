from __future__ import annotations

import io
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import openai
import pytest

from akgate import APIKeyAuth, MemoryKeyStore, RequestValidation, Routing, ensure_demo_key
from akgate._firstrun import KeyChoice
from akgate._serve import (
    ServeConfig,
    base_url_for,
    build_app,
    print_banner,
    serve,
    upstream_models,
)
from akgate.cli import build_parser
from akgate.providers import DemoModel, UpstreamProvider
from akgate.store import StatefulResponses
from akgate.usage import SpendControl
from tests.support.servers import free_port, run_uvicorn

ROOT = Path(__file__).resolve().parents[1]
MESSAGES = [{"role": "user", "content": "ping"}]


def start_serve(
    port: int, home: Path, *extra: str
) -> tuple[subprocess.Popen[str], threading.Thread, str, str | None]:
    """Start `python -m akgate serve`; return it, the base URL and the key from its banner."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "middleware"),
        "PYTHONUNBUFFERED": "1",
        "AKGATE_HOME": str(home),
    }
    env.pop("AKGATE_API_KEYS", None)
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "akgate", "serve", "--port", str(port)),
            *("--token-delay-ms", "0", *extra),
        ],
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
    base_url = None
    while True:
        try:
            line = lines.get(timeout=20)
        except queue.Empty:
            process.kill()
            pytest.fail("akgate serve printed no banner")
        if "Base URL:" in line:
            base_url = line.split("Base URL:")[1].strip()
        elif "API key:" in line and base_url is not None:
            words = line.split("API key:")[1].split()
            key = words[0] if words[0].startswith("ak_") else None
            return process, reader, base_url, key


def innermost(app: Any) -> Any:
    while hasattr(app, "app") and app.app is not None:
        app = app.app
    return app


def stop(process: subprocess.Popen[str], reader: threading.Thread) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()
    reader.join(timeout=5)
    assert process.stdout is not None
    process.stdout.close()


@pytest.mark.server
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_subprocess_answers_the_sdk_and_exits_zero(stop_signal: int, tmp_path: Path) -> None:
    port = free_port()
    process, reader, base_url, key = start_serve(port, tmp_path)
    closing: list[openai.OpenAI] = []
    try:
        assert base_url == f"http://127.0.0.1:{port}/v1"
        assert key is not None
        assert key.startswith("ak_test_")
        client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0)
        closing.append(client)
        completion = client.chat.completions.create(model="demo", messages=MESSAGES)
        assert completion.choices[0].message.content == (
            'Hello! I am the akgate demo model. You said: "ping"'
        )
        assert completion.model_extra is not None
        assert completion.model_extra["routing_metadata"]["provider"] == "demo"
        stream = client.chat.completions.create(model="demo", messages=MESSAGES, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices).endswith(
            '"ping"'
        )
        assert client.responses.create(model="demo", input="ping").output_text.endswith('"ping"')
        wrong = openai.OpenAI(base_url=base_url, api_key="ak_test_wrong", max_retries=0)
        with wrong, pytest.raises(openai.AuthenticationError):
            wrong.models.list()
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
    finally:
        for opened in closing:
            opened.close()
        stop(process, reader)


@pytest.mark.server
def test_serve_prints_a_new_key_only_on_a_fresh_store(tmp_path: Path) -> None:
    process, reader, _, key = start_serve(free_port(), tmp_path)
    stop(process, reader)
    assert key is not None
    assert (tmp_path / "keys.sqlite3").is_file()
    assert key not in (tmp_path / "keys.sqlite3").read_bytes().decode("latin-1")
    process, reader, base_url, again = start_serve(free_port(), tmp_path)
    try:
        assert again is None
        with openai.OpenAI(base_url=base_url, api_key=key, max_retries=0) as client:
            assert client.chat.completions.create(model="demo", messages=MESSAGES).choices
    finally:
        stop(process, reader)


@pytest.mark.server
def test_openai_sdk_works_against_the_serve_stack_over_uvicorn() -> None:
    store = MemoryKeyStore()
    key = anyio.run(ensure_demo_key, store)
    assert key is not None
    with (
        run_uvicorn(build_app(ServeConfig(token_delay_ms=0), keys=store)) as base,
        openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0) as client,
    ):
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


def test_build_app_wraps_the_demo_in_every_layer() -> None:
    app = build_app(ServeConfig(token_delay_ms=20), keys=MemoryKeyStore()).app
    assert isinstance(app, APIKeyAuth)
    assert isinstance(app.app, StatefulResponses)  # on by default under akgate serve
    assert isinstance(app.app.app, SpendControl)
    assert isinstance(app.app.app.app, RequestValidation)
    assert isinstance(app.app.app.app.app, Routing)
    demo = innermost(app)
    assert isinstance(demo, DemoModel)
    assert demo.token_delay == pytest.approx(0.02)


def test_build_app_fronts_an_upstream_with_the_key_from_the_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MY_KEY", "sk-abc")
    config = ServeConfig(
        upstream="http://127.0.0.1:9/v1", upstream_key_env="MY_KEY", models=("my-model",)
    )
    upstream = innermost(build_app(config, keys=MemoryKeyStore()))
    assert isinstance(upstream, UpstreamProvider)
    assert (b"authorization", b"Bearer sk-abc") in upstream._extra_headers


@pytest.mark.server
def test_serve_upstream_lists_the_upstream_models_and_routes_to_it() -> None:
    store = MemoryKeyStore()
    key = anyio.run(ensure_demo_key, store)
    with run_uvicorn(ModelsAndChat()) as upstream:
        assert upstream_models(upstream + "/v1", None) == ("m-1", "m-2")
        app = build_app(ServeConfig(upstream=upstream + "/v1"), keys=store)
        with (
            run_uvicorn(app) as base,
            openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0) as client,
        ):
            completion = client.chat.completions.create(model="m-2", messages=MESSAGES)
            assert completion.model_extra is not None
            assert completion.model_extra["routing_metadata"]["provider"] == "upstream"
            assert {m.id for m in client.models.list()} >= {"m-1", "m-2"}


def test_unreachable_upstream_is_named_without_its_credentials() -> None:
    port = free_port()
    with pytest.raises(ValueError, match=f"cannot connect to http://127.0.0.1:{port}/v1 ") as info:
        upstream_models(f"http://user:hunter2@127.0.0.1:{port}/v1?key=k", None)
    assert "hunter2" not in str(info.value)


class ModelsAndChat:
    """A tiny OpenAI-compatible upstream: lists two models and answers chat with the demo."""

    def __init__(self) -> None:
        self.demo = DemoModel()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/models":
            body = b'{"object":"list","data":[{"id":"m-1"},{"id":"m-2"}]}'
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "http":
            # The demo answers only its own model ids.
            scope = {**scope, "headers": list(scope["headers"])}
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            body = body.replace(b'"m-2"', b'"demo"')
            sent = False

            async def replay() -> Any:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body}
                return await receive()

            headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await self.demo({**scope, "headers": headers}, replay, send)
            return
        await self.demo(scope, receive, send)


def test_banner_without_a_known_key_prints_the_command_that_makes_one() -> None:
    out = io.StringIO()
    choice = KeyChoice("none", note="$AKGATE_KEY is not set")
    print_banner(
        "http://127.0.0.1:8000/v1",
        choice,
        store="/s/keys.sqlite3",
        store_option="--db /s/keys.sqlite3",
        file=out,
    )
    text = out.getvalue()
    assert "Key store: /s/keys.sqlite3" in text
    assert "export AKGATE_KEY=$(akgate keys create --name me --test --db /s/keys.sqlite3)" in text
    assert '-H "Authorization: Bearer $AKGATE_KEY"' in text
    assert 'api_key=os.environ["AKGATE_KEY"]' in text
    assert "# pip install openai" in text


def test_banner_shows_the_url_and_copy_paste_examples() -> None:
    out = io.StringIO()
    print_banner("http://127.0.0.1:8000/v1", KeyChoice("new", "ak_live_x", "ak_live_x"), file=out)
    text = out.getvalue()
    assert "Base URL:  http://127.0.0.1:8000/v1" in text
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
        [
            *("serve", "--port", "9000", "--upstream", "http://x/v1", "--token-delay-ms", "3"),
            *("--model", "a", "--model", "b", "--db", "/tmp/k.sqlite3"),
        ]
    )
    assert (args.port, args.upstream, args.token_delay_ms) == (9000, "http://x/v1", 3.0)
    assert args.model == ["a", "b"]
    assert args.db == "/tmp/k.sqlite3"
    assert args.upstream_key_env == "OPENAI_API_KEY"
    assert callable(args.handler)
