"""``akgate serve`` answers keep-alive requests without Nagle stalls.

Without ``TCP_NODELAY`` on accepted connections, each response's second write (the body after the
headers) waits for the client's delayed ACK: ~40 ms per request on Linux, whatever the load.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port
from tests.test_serve import MESSAGES, start_serve, stop

pytestmark = pytest.mark.server

#: Linux's minimum delayed-ACK timeout; a stalled request takes at least this long.
_DELAYED_ACK_S = 0.040


def test_sequential_keep_alive_requests_do_not_wait_for_delayed_acks(tmp_path: Path) -> None:
    process, reader, base_url, key = start_serve(free_port(), tmp_path)
    try:
        assert key is not None
        headers = {"authorization": f"Bearer {key}"}
        body = {"model": "demo", "messages": MESSAGES}
        timings: list[float] = []
        with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
            client.post("/chat/completions", json=body).raise_for_status()  # warm-up
            for _ in range(50):
                started = time.perf_counter()
                response = client.post("/chat/completions", json=body)
                timings.append(time.perf_counter() - started)
                assert response.status_code == 200
        # One connection for all of them, so every request after the first is a keep-alive one.
        # A stalled server takes >= 50 x 40 ms; a healthy one a few ms each even on a busy machine.
        assert statistics.median(timings) < _DELAYED_ACK_S / 2, timings
        assert sum(timings) < 50 * _DELAYED_ACK_S / 2, timings
    finally:
        stop(process, reader)
