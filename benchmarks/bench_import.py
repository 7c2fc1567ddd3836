"""What ``import akgate`` costs, and what each entry point imports on first use.

Run: ``python benchmarks/bench_import.py [--rounds 7]``.

Each statement runs in a fresh interpreter (this checkout's ``middleware`` first on the path);
the best of N rounds of process CPU time (``time.process_time``, so a loaded machine disturbs it
less than wall time) is printed with how many ``akgate`` modules it loaded, whether pydantic
schemas and httpx came with it, and its ratio to the full stack (``from akgate import gateway``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

MIDDLEWARE = Path(__file__).resolve().parents[1] / "middleware"
STATEMENTS = (
    "import akgate",
    "from akgate import APIKeyAuth",
    "from akgate import RequestValidation",
    "from akgate import Routing",
    "from akgate import gateway",
)
PROBE = (
    "import sys, time\n"
    "t = time.process_time()\n"
    "{statement}\n"
    "d = time.process_time() - t\n"
    "mods = [m for m in sys.modules if m.startswith('akgate')]\n"
    "print(d, len(mods), 'akgate.schemas' in sys.modules, 'httpx' in sys.modules)\n"
)


def measure(statement: str, rounds: int) -> tuple[float, str, str, str]:
    env = {**os.environ, "PYTHONPATH": str(MIDDLEWARE)}
    runs = []
    for _ in range(rounds):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(statement=statement)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        runs.append(out)
    best = min(float(run[0]) for run in runs)
    return best, runs[0][1], runs[0][2], runs[0][3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    results = {s: measure(s, args.rounds) for s in STATEMENTS}
    full = results["from akgate import gateway"][0]
    print(f"{'statement':40} {'CPU ms':>8} {'modules':>8} schemas httpx  ratio")
    for statement, (cpu, modules, schemas, httpx) in results.items():
        ratio = cpu / full if full else float("nan")
        print(f"{statement:40} {cpu * 1000:8.1f} {modules:>8} {schemas:7} {httpx:6} {ratio:5.2f}")


if __name__ == "__main__":
    main()
