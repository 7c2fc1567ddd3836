"""`akgate serve` exposes /healthz, /readyz and /metrics by default, logs one structured line per
request instead of uvicorn's, and has flags to move or turn each off."""

from __future__ import annotations

import asyncio
import json
import queue
import re
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port

from .test_first_run import ROOT, akgate, serve_env

pytestmark = pytest.mark.server


def start(home: Path, *args: str) -> tuple[subprocess.Popen[str], queue.Queue[str], str, str]:
    port = free_port()
    process = subprocess.Popen(
        akgate("serve", "--port", str(port), "--token-delay-ms", "0", *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=serve_env(home),
        cwd=ROOT,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    key = ""
    while True:
        try:
            line = lines.get(timeout=20)
        except queue.Empty:
            process.kill()
            pytest.fail("akgate serve printed no banner")
        if "API key:" in line:
            key = line.split("API key:")[1].split()[0]
        if line.startswith("Press Ctrl-C"):
            return process, lines, f"http://127.0.0.1:{port}", key


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.wait(timeout=10)
    assert process.stdout is not None
    process.stdout.close()


def test_serve_exposes_health_and_metrics_and_logs_json_lines(tmp_path: Path) -> None:
    process, lines, base, key = start(tmp_path, "--log-format", "json")
    try:
        assert httpx.get(base + "/healthz").json() == {"status": "ok"}
        ready = httpx.get(base + "/readyz").json()
        assert ready["status"] == "ok"
        assert ready["checks"]["key_store"] == "ok"
        assert ready["checks"]["response_store"] == "ok"  # serve keeps responses in SQLite
        chat = httpx.post(
            base + "/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": "demo", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert chat.status_code == 200
        metrics = httpx.get(base + "/metrics").text
        assert 'akgate_requests_total{endpoint="chat_completions",model="demo"' in metrics
        record = json.loads(lines.get(timeout=10))
        assert record["request_id"] == chat.headers["x-request-id"]
        assert (record["key_id"], record["status"], record["model"]) == (key[:16], 200, "demo")
        assert lines.empty()  # no uvicorn access line, and probes/scrapes are not logged
    finally:
        stop(process)


def test_serve_logs_one_text_line_per_concurrent_request(tmp_path: Path) -> None:
    """Requests that finish together are written together (one write per event-loop turn):
    each still gets its own line, in akgate serve's text format."""
    process, lines, base, key = start(tmp_path)

    async def many() -> list[str]:
        async with httpx.AsyncClient(
            base_url=base, headers={"authorization": f"Bearer {key}"}
        ) as client:
            chat = {"model": "demo", "messages": [{"role": "user", "content": "hi"}]}
            answers = await asyncio.gather(
                *(client.post("/v1/chat/completions", json=chat) for _ in range(20))
            )
        assert {answer.status_code for answer in answers} == {200}
        return [answer.headers["x-request-id"] for answer in answers]

    try:
        request_ids = asyncio.run(many())
        logged = [lines.get(timeout=10) for _ in request_ids]
    finally:
        stop(process)
    line = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (req_\w+) POST /v1/chat/completions 200 ")
    matches = [line.match(text) for text in logged]
    assert all(matches), logged
    assert sorted(m.group(1) for m in matches if m) == sorted(request_ids)


def test_serve_flags_move_and_turn_off_the_operations_paths(tmp_path: Path) -> None:
    process, _, base, _ = start(
        tmp_path, "--healthz-path", "/-/live", "--readyz-path", "/-/ready", "--no-metrics"
    )
    try:
        assert httpx.get(base + "/-/live").status_code == 200
        assert httpx.get(base + "/-/ready").status_code == 200
        assert httpx.get(base + "/healthz").status_code == 404
        assert httpx.get(base + "/metrics").status_code == 404
    finally:
        stop(process)


def test_serve_workers_sum_their_metrics(tmp_path: Path) -> None:
    """With --workers, every worker's /metrics answers the sum over all of them."""
    process, _, base, key = start(tmp_path, "--workers", "2")
    try:
        chat = {"model": "demo", "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(6):  # a new connection each: the requests spread over the workers
            response = httpx.post(
                base + "/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, json=chat
            )
            assert response.status_code == 200
        line = 'akgate_requests_total{endpoint="chat_completions",model="demo",provider="demo",'
        for _ in range(4):  # whichever worker answers the scrape
            metrics = httpx.get(base + "/metrics").text
            counted = [row for row in metrics.splitlines() if row.startswith(line)]
            assert counted, metrics
            assert float(counted[0].rsplit(" ", 1)[1]) == 6
    finally:
        stop(process)
