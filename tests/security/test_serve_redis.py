"""`akgate serve --redis`: the first request after start is served (no "Event loop is closed")."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.servers import RedisServer, free_port
from tests.test_serve import start_serve, stop

pytestmark = [pytest.mark.server, pytest.mark.redis]

CHAT = {"model": "demo", "messages": [{"role": "user", "content": "hi"}]}


def test_first_request_after_start_is_served(redis_server: RedisServer, tmp_path: Path) -> None:
    redis_server.flush()
    process, reader, base_url, key = start_serve(free_port(), tmp_path, "--redis", redis_server.url)
    try:
        assert key is not None  # a fresh Redis store: the demo key was created at start-up
        headers = {"authorization": f"Bearer {key}"}
        first = httpx.post(f"{base_url}/chat/completions", json=CHAT, headers=headers)
        assert first.status_code == 200, first.text
        assert httpx.get(f"{base_url}/models", headers=headers).status_code == 200
    finally:
        stop(process, reader)
