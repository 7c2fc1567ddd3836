"""Node clients with their default settings (Vercel AI SDK, openai npm) against a real
``akgate serve``: ``tests/clients/js/stateful.test.mjs``, run with ``node --test``.

Exact versions are pinned in ``tests/clients/js/package-lock.json`` and installed by
``scripts/test.sh`` (``npm ci``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.servers import free_port
from tests.test_serve import start_serve, stop

JS = Path(__file__).parent / "js"


def node_or_skip() -> str:
    node = shutil.which("node")
    if node is None or not (JS / "node_modules").is_dir():
        message = "Node clients not installed: npm ci --prefix tests/clients/js"
        if os.environ.get("CI") or os.environ.get("AKGATE_REQUIRE_REDIS"):
            pytest.fail(message)  # the full CI run installs them (scripts/test.sh)
        pytest.skip(message)
    return node


@pytest.mark.server
def test_node_clients_against_akgate_serve(tmp_path: Path) -> None:
    node = node_or_skip()
    process, reader, base_url, key = start_serve(free_port(), tmp_path)
    assert key is not None
    try:
        run = subprocess.run(
            [node, "--test", "stateful.test.mjs"],
            cwd=JS,
            env={**os.environ, "AKGATE_BASE_URL": base_url, "AKGATE_KEY": key},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        stop(process, reader)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "# pass 3" in run.stdout
