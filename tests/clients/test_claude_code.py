"""The Claude Code CLI (``claude -p``, pinned in ``claude_code/package-lock.json``) against a
real ``akgate serve``: a plain prompt and a tool-using prompt, on both demo models.

``scripts/test.sh`` installs the CLI with ``npm ci``; the npm package's platform binary comes
from the npm registry as an optional dependency.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import free_port
from tests.test_serve import start_serve, stop

CLAUDE = Path(__file__).parent / "claude_code" / "node_modules" / ".bin" / "claude"

pytestmark = pytest.mark.server


@pytest.fixture(scope="module", autouse=True)
def _installed() -> None:
    if CLAUDE.exists():
        return
    message = "Claude Code CLI not installed (npm ci in tests/clients/claude_code)"
    if os.environ.get("CI"):  # CI installs it in scripts/test.sh: missing there is a failure
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    process, reader, base_url, key = start_serve(free_port(), tmp_path_factory.mktemp("home"))
    assert key is not None
    try:
        yield base_url.removesuffix("/v1"), key
    finally:
        stop(process, reader)


def claude(
    served: tuple[str, str], tmp_path: Path, model: str, prompt: str
) -> list[dict[str, Any]]:
    """Run ``claude -p`` headless against the gateway; return its stream-json events."""
    base, key = served
    config = tmp_path / "config"
    work = tmp_path / "work"
    config.mkdir()
    work.mkdir()
    (work / "notes.txt").write_text("The meeting is at noon.\n")
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(config),
        "CLAUDE_CONFIG_DIR": str(config),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "ANTHROPIC_BASE_URL": base,
        "ANTHROPIC_API_KEY": key,
    }
    done = subprocess.run(
        [
            str(CLAUDE),
            "-p",
            prompt,
            "--model",
            model,
            "--output-format",
            "stream-json",
            "--verbose",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    result = events[-1]
    assert result["type"] == "result"
    assert result["is_error"] is False, result
    assert result["subtype"] == "success"
    assert result["result"]
    return events


def blocks(events: list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    return [
        block
        for event in events
        if event.get("type") == role
        for block in event["message"]["content"]
        if isinstance(block, dict)
    ]


@pytest.mark.parametrize("model", ["demo", "demo-reasoning"])
def test_plain_prompt(served: tuple[str, str], tmp_path: Path, model: str) -> None:
    events = claude(served, tmp_path, model, "Say hello in one short sentence.")
    texts = [b["text"] for b in blocks(events, "assistant") if b["type"] == "text"]
    assert texts
    assert not any(b["type"] == "tool_use" for b in blocks(events, "assistant"))
    if model == "demo-reasoning":
        assert any(b["type"] == "thinking" for b in blocks(events, "assistant"))


@pytest.mark.parametrize("model", ["demo", "demo-reasoning"])
def test_prompt_that_uses_a_tool(served: tuple[str, str], tmp_path: Path, model: str) -> None:
    events = claude(served, tmp_path, model, "Call the Read tool on notes.txt")
    calls = [b for b in blocks(events, "assistant") if b["type"] == "tool_use"]
    assert calls
    assert calls[0]["name"] == "Read"
    results = [b for b in blocks(events, "user") if b["type"] == "tool_result"]
    assert results
    assert results[0]["tool_use_id"] == calls[0]["id"]
    # The loop went on: the model answered after the tool result.
    last = [b for b in blocks(events, "assistant") if b["type"] == "text"]
    assert last
