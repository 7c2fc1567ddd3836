"""The peer and upstream-client benchmarks run end to end with tiny counts (no timing asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def run(script: str, *args: str) -> str:
    env = {**os.environ}
    env.pop("AKGATE_API_KEYS", None)
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.server
def test_peer_benchmark_measures_akgate_serve_against_the_bare_upstream() -> None:
    out = run(
        "bench_peer.py",
        *("--quick", "--duration", "0.3", "--rounds", "1", "--no-litellm", "--lean-demo"),
    )
    assert "| bare upstream | " in out
    assert "| akgate serve | " in out
    # The embedded-demo scenario: akgate serve over its demo model against the bare demo app.
    assert "| bare demo app | " in out
    assert "| akgate serve (demo) | " in out
    assert "| akgate serve (demo), lean | " in out  # without metrics, tracing, health, store
    assert "gateway CPU ms/req" in out
    assert "not measured" in out


def test_upstream_client_benchmark_covers_every_client() -> None:
    out = run("bench_upstream_client.py", "--requests", "32", "--rounds", "1")
    for client in ("httpx (before)", "httpx tuned", "aiohttp", "akgate h1"):
        assert f"| {client} | " in out
