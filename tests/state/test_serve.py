"""``akgate serve`` stores responses by default (SQLite beside the keys), across restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from tests.support.servers import free_port
from tests.test_serve import ROOT, start_serve, stop


@pytest.mark.server
def test_serve_chains_and_keeps_responses_across_a_restart(tmp_path: Path) -> None:
    process, reader, base_url, key = start_serve(free_port(), tmp_path)
    assert key is not None
    try:
        with openai.OpenAI(base_url=base_url, api_key=key, max_retries=0) as client:
            first = client.responses.create(model="demo", input="ping")
            second = client.responses.create(
                model="demo", input="pong", previous_response_id=first.id
            )
            assert second.previous_response_id == first.id
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        stop(process, reader)
    assert (tmp_path / "responses.sqlite3").exists()

    process, reader, base_url, _ = start_serve(free_port(), tmp_path)
    try:
        with openai.OpenAI(base_url=base_url, api_key=key, max_retries=0) as client:
            assert client.responses.retrieve(second.id).output_text == second.output_text
    finally:
        stop(process, reader)

    env = {**os.environ, "PYTHONPATH": str(ROOT / "middleware"), "AKGATE_HOME": str(tmp_path)}
    pruned = subprocess.run(
        [sys.executable, "-m", "akgate", "responses", "prune"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert pruned.stdout.strip() == "pruned 0 expired response(s)"


def test_serve_store_url_defaults() -> None:
    from akgate.store._cli import serve_store_url

    assert serve_store_url(None, db=None, redis=None) == "sqlite://"
    assert serve_store_url(None, db="/x/keys.db", redis=None) == "sqlite:////x/responses.sqlite3"
    assert serve_store_url(None, db=None, redis="redis://h/0") == "redis://h/0"
    assert serve_store_url("off", db=None, redis="redis://h/0") is None
    assert serve_store_url("memory://", db=None, redis=None) == "memory://"


def test_gateway_takes_the_store_at_its_own_level() -> None:
    from akgate import gateway

    with pytest.raises(ValueError, match="response_store"):
        gateway(lambda *_: None, keys=["ak_test_x"], adapter_options={"store": "memory://"})


async def test_the_served_stack_makes_its_reasoning_ring_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    from akgate import MemoryKeyStore
    from akgate._serve import ServeConfig, build_app
    from akgate.auth import new_key_record

    monkeypatch.setenv("AKGATE_HOME", str(tmp_path))
    monkeypatch.delenv("AKGATE_REASONING_KEYS", raising=False)
    key = new_key_record(name="t", environment="test")
    app = build_app(ServeConfig(token_delay_ms=0), keys=MemoryKeyStore([key.record]))
    assert not (tmp_path / "reasoning.keys").exists()  # nothing written until needed
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        answer = await http.post(
            "/v1/responses",
            headers={"Authorization": f"Bearer {key.key}"},
            json={
                "model": "demo-reasoning",
                "input": "hi",
                "store": False,
                "include": ["reasoning.encrypted_content"],
            },
        )
    assert answer.status_code == 200, answer.text
    reasoning = answer.json()["output"][0]
    assert reasoning["type"] == "reasoning"
    assert reasoning["encrypted_content"].startswith("akgr1.")
    assert (tmp_path / "reasoning.keys").exists()
