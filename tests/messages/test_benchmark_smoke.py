"""The Messages benchmark runs end to end with tiny counts (no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_messages.py"


def test_benchmark_prints_every_ratio() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--chunks", "20", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = done.stdout
    assert "per text chunk" in out
    assert "per tool chunk" in out
    assert "messages/responses" in out
    assert "first event after first inner chunk" in out
