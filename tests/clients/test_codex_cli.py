"""The Codex CLI itself (npm ``@openai/codex``, pinned in ``tests/clients/codex``) against a real
``akgate serve`` subprocess, headless (``codex exec``), through to Codex's final answer.

Codex gets a private ``CODEX_HOME`` whose only model provider is the gateway on 127.0.0.1 over the
Responses wire API, a read-only sandbox, no approvals, and plugins, analytics and update checks
off. Every other connection is sent to a local "proxy" that only counts and closes: the tests
assert that it saw none, so Codex reached no vendor. ``scripts/test.sh`` installs the CLI with
``npm ci``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import free_port
from tests.test_serve import start_serve, stop

CODEX_DIR = Path(__file__).resolve().parent / "codex"
CODEX = CODEX_DIR / "node_modules" / ".bin" / "codex"

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def codex() -> Path:
    if not CODEX.exists():
        if os.environ.get("CI"):
            pytest.fail("the Codex CLI is not installed: scripts/test.sh runs npm ci for it")
        pytest.skip(f"the Codex CLI is not installed: run `npm ci` in {CODEX_DIR}")
    return CODEX


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real ``akgate serve`` subprocess over the demo model: ``(base URL, key)``."""
    process, reader, base_url, key = start_serve(free_port(), tmp_path_factory.mktemp("akgate"))
    assert key is not None
    try:
        yield base_url, key
    finally:
        stop(process, reader)


class DeadProxy:
    """A listening socket that counts connections and closes them (a proxy that never works)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def proxy() -> Iterator[DeadProxy]:
    dead = DeadProxy()
    yield dead
    dead.close()


def codex_home(root: Path, base_url: str) -> Path:
    home = root / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(
        f"""
approval_policy = "never"
sandbox_mode = "read-only"
check_for_update_on_startup = false
model_provider = "akgate"

[model_providers.akgate]
name = "akgate"
base_url = "{base_url}"
env_key = "AKGATE_KEY"
wire_api = "responses"

[features]
plugins = false

[analytics]
enabled = false
""",
        encoding="utf-8",
    )
    return home


def run_codex(
    codex: Path,
    gateway: tuple[str, str],
    proxy: DeadProxy,
    tmp_path: Path,
    model: str,
    prompt: str,
) -> tuple[str, list[dict[str, Any]]]:
    """Run ``codex exec``; returns its final answer and its JSONL events."""
    base_url, key = gateway
    home = codex_home(tmp_path, base_url)
    workdir = tmp_path / "work"
    workdir.mkdir()
    last = tmp_path / "last-message.txt"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "CODEX_HOME": str(home),
        "AKGATE_KEY": key,
        # Nothing but the gateway: any other connection goes to the dead proxy and fails.
        "HTTPS_PROXY": proxy.url,
        "HTTP_PROXY": proxy.url,
        "ALL_PROXY": proxy.url,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    done = subprocess.run(
        [
            str(codex),
            "exec",
            "--strict-config",
            "--skip-git-repo-check",
            "--ephemeral",
            "--json",
            "-m",
            model,
            "-C",
            str(workdir),
            "-o",
            str(last),
            prompt,
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    assert proxy.connections == 0, "Codex tried to reach something other than the gateway"
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return last.read_text(encoding="utf-8").strip(), events


def items(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [
        e["item"]
        for e in events
        if e.get("type") == "item.completed" and e.get("item", {}).get("type") == kind
    ]


@pytest.mark.parametrize("model", ["demo", "demo-reasoning"])
def test_codex_answers_a_plain_prompt(
    codex: Path, gateway: tuple[str, str], proxy: DeadProxy, tmp_path: Path, model: str
) -> None:
    answer, events = run_codex(codex, gateway, proxy, tmp_path, model, "Say hello to the gateway.")
    assert answer == "Hello, gateway!"
    assert [m["text"] for m in items(events, "agent_message")] == [answer]
    assert not items(events, "command_execution")
    assert any(e.get("type") == "turn.completed" for e in events)


@pytest.mark.parametrize("model", ["demo", "demo-reasoning"])
def test_codex_runs_a_tool_and_finishes(
    codex: Path, gateway: tuple[str, str], proxy: DeadProxy, tmp_path: Path, model: str
) -> None:
    answer, events = run_codex(
        codex,
        gateway,
        proxy,
        tmp_path,
        model,
        'Use the exec_command tool to run "echo akgate-ok".',
    )
    commands = items(events, "command_execution")
    assert len(commands) == 1, events
    assert "echo akgate-ok" in commands[0]["command"]
    assert "akgate-ok" in commands[0]["aggregated_output"]
    # the demo quotes the tool result in its final answer, which ends the agent loop
    assert answer.startswith("The tool results are in. exec_command returned:")
    assert "akgate-ok" in answer
