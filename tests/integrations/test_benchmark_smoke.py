"""The overhead benchmark runs end to end with tiny counts (no timing is asserted)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_overhead.py"


def load_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_overhead", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_overhead"] = module
    spec.loader.exec_module(module)
    return module


def test_in_process_benchmark_covers_every_variant(capsys: pytest.CaptureFixture[str]) -> None:
    assert load_benchmark().main(["--quick", "--no-server"]) == 0
    table = capsys.readouterr().out
    for variant in ("bare", "auth", "validation", "routing", "adapter", "full", "full-responses"):
        assert f"| {variant} (" in table


def test_wrk_output_is_parsed_into_microseconds() -> None:
    output = """
  Latency Distribution
     50%  512.00us
     75%  1.20ms
     90%  2.00ms
     99%    1.50s
Requests/sec:   1234.50
"""
    assert load_benchmark().parse_wrk(output) == {
        "rps": 1234.5,
        "p50_us": 512.0,
        "p99_us": 1.5e6,
        "errors": 0.0,
    }


def test_served_stack_benchmark_covers_every_variant(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location(
        "bench_served", SCRIPT.with_name("bench_served.py")
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--quick", "--request", "chat JSON"]) == 0
    table = capsys.readouterr().out
    for variant in module.VARIANTS:
        assert f"| {variant} | " in table


def test_same_process_ab_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    # This checkout against itself, tiny counts: every workload builds and runs on both sides.
    spec = importlib.util.spec_from_file_location("bench_ab", SCRIPT.with_name("bench_ab.py"))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    middleware = SCRIPT.parents[1] / "middleware"
    assert module.main(["--base", str(middleware), "--requests", "50", "--rounds", "2"]) == 0
    out = capsys.readouterr().out
    for workload in module.WORKLOADS:
        assert workload in out
    assert "fixed per stream" in out
