"""The Stateful Responses benchmark runs end to end with tiny counts (no timing is asserted)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_state.py"


def test_benchmark_runs_every_backend(
    capsys: pytest.CaptureFixture[str], redis_server: Any
) -> None:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        spec = importlib.util.spec_from_file_location("bench_state", SCRIPT)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert module.main(["--quick", "--redis", redis_server.url]) == 0
    finally:
        sys.path.remove(str(SCRIPT.parent))
    out = capsys.readouterr().out
    for backend in ("memory", "sqlite", "redis"):
        assert f"{backend} " in out
    assert "10-turn chain 3" in out  # 1 GET + 1 MGET + the save


def _load(name: str) -> Any:
    path = SCRIPT.parent / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_baseline_comparison_runs_two_trees_in_turns(capsys: pytest.CaptureFixture[str]) -> None:
    root = SCRIPT.parents[1]
    if subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True
    ).returncode:
        pytest.skip("not a git checkout: there is no baseline to extract")
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        assert (
            _load("bench_state").main(["--quick", "--baseline", "HEAD", "--backends", "memory"])
            == 0
        )
    finally:
        sys.path.remove(str(SCRIPT.parent))
    out = capsys.readouterr().out
    assert "[HEAD]" in out
    assert "[this tree]" in out
    assert out.count("memory  store:false") == 2


def test_parts_benchmark_runs() -> None:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        assert _load("bench_state_parts").main(["--n", "3", "--rounds", "1", "--preload", "3"]) == 0
    finally:
        sys.path.remove(str(SCRIPT.parent))


def test_store_writes_benchmark_runs_against_a_baseline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Both trees (here the same one) take turns over every scenario."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        tree = str(SCRIPT.parents[1] / "middleware")
        assert _load("bench_store_writes").main(["--quick", "--baseline", tree]) == 0
    finally:
        sys.path.remove(str(SCRIPT.parent))
    out = capsys.readouterr().out
    for scenario in ("one request at a time", "ending together", "ending apart"):
        assert f"{scenario} | baseline |" in out
        assert f"{scenario} | this tree |" in out
