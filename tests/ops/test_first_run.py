"""`akgate serve` as a new user meets it, as a subprocess: the first screen always ends with lines
that work when pasted and names the key store; a busy port loses no key; a down upstream is
named."""

from __future__ import annotations

import os
import queue
import shlex
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.server


def serve_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "middleware"),
        "PYTHONUNBUFFERED": "1",
        "AKGATE_HOME": str(home),
        **extra,
    }
    for name in ("AKGATE_API_KEYS", "AKGATE_KEY", "AKGATE_KEY_PEPPER"):
        if name not in extra:
            env.pop(name, None)
    return env


def akgate(*args: str) -> list[str]:
    return [sys.executable, "-m", "akgate", *args]


def first_screen(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], list[str]]:
    """Start `akgate serve`; return it and its banner, up to "Press Ctrl-C to stop."."""
    port = str(free_port())
    process = subprocess.Popen(
        akgate("serve", "--port", port, "--token-delay-ms", "0", *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=ROOT,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    banner: list[str] = []
    while not banner or banner[-1] != "Press Ctrl-C to stop.":
        try:
            banner.append(lines.get(timeout=20).rstrip("\n"))
        except queue.Empty:
            process.kill()
            pytest.fail("akgate serve printed no banner:\n" + "\n".join(banner))
    return process, banner


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.wait(timeout=10)
    assert process.stdout is not None
    process.stdout.close()


def block(banner: list[str], first: str) -> list[str]:
    """The indented lines from the one starting with ``first`` to the next blank line."""
    start = next(i for i, line in enumerate(banner) if line.strip().startswith(first))
    end = banner.index("", start)
    return [line[2:] for line in banner[start:end]]


def run_pasted(banner: list[str], env: dict[str, str]) -> str:
    """Paste the banner's shell lines into bash, then its Python lines into python."""
    shell = block(banner, "export AKGATE_KEY" if any("export" in x for x in banner) else "curl")
    python = "\n".join(block(banner, "# pip install openai"))
    expected = 2 if shutil.which("curl") else 1
    if expected == 1:  # no curl on this machine: the export line (if any) and the SDK only
        shell = shell[: next(i for i, line in enumerate(shell) if line.startswith("curl"))]
    lines = ["set -e", *shell, "echo"]
    lines.append(f"{shlex.quote(sys.executable)} -c {shlex.quote(python)}")
    done = subprocess.run(
        ["bash", "-c", "\n".join(lines)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("You said") == expected, done.stdout
    return done.stdout


def test_first_screen_works_when_pasted_on_a_fresh_and_on_an_existing_store(
    tmp_path: Path,
) -> None:
    env = serve_env(tmp_path)
    store = tmp_path / "keys.sqlite3"
    # Fresh store: a demo key is created and shown.
    process, banner = first_screen(env)
    try:
        assert f"  Key store: {store}" in banner
        key_line = next(line for line in banner if "API key:" in line)
        key = key_line.split("API key:")[1].split()[0]
        assert key.startswith("ak_test_")
        run_pasted(banner, env)
    finally:
        stop(process)

    # Existing store, nothing known to this terminal: the banner says how to make a key there.
    process, banner = first_screen(env)
    try:
        assert f"  Key store: {store}" in banner
        assert any("none known to this terminal ($AKGATE_KEY is not set)" in x for x in banner)
        assert not any(key in line for line in banner)
        run_pasted(banner, env)  # makes a key in the store named above, then curl and the SDK
    finally:
        stop(process)

    # $AKGATE_KEY holds a key of this store: the banner uses it.
    env_with_key = serve_env(tmp_path, AKGATE_KEY=key)
    process, banner = first_screen(env_with_key)
    try:
        assert any(f"$AKGATE_KEY ({key[:16]}, found in the store)" in x for x in banner)
        run_pasted(banner, env_with_key)
    finally:
        stop(process)


def test_busy_port_fails_before_a_key_is_created_and_names_the_option(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            akgate("serve", "--port", str(port)),
            env=serve_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "--port" in done.stderr
    assert not (tmp_path / "keys.sqlite3").exists()  # no key made that nobody would see


def test_upstream_down_says_cannot_connect_and_makes_no_key(tmp_path: Path) -> None:
    upstream = f"http://127.0.0.1:{free_port()}/v1"
    done = subprocess.run(
        akgate("serve", "--port", "0", "--upstream", upstream),
        env=serve_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert f"cannot connect to {upstream}" in done.stderr
    assert "name them with --model" not in done.stderr
    assert not (tmp_path / "keys.sqlite3").exists()
