"""What uvicorn rejects before akgate sees it: plain text, as docs/security.md says."""

from __future__ import annotations

import importlib.util
import socket

import anyio
import pytest

from akgate._serve import ServeConfig, build_app
from akgate.auth import MemoryKeyStore, ensure_demo_key
from tests.support.servers import run_uvicorn

pytestmark = pytest.mark.server

PLAIN_400 = b"HTTP/1.1 400 Bad Request"
#: httptools comes with uvicorn[standard]; h11 always.
PARSERS = ["h11"] + (["httptools"] if importlib.util.find_spec("httptools") else [])


def exchange(base: str, request: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer


@pytest.mark.parametrize("http", PARSERS)
@pytest.mark.parametrize(
    ("name", "head"),
    [
        ("bad content-length", b"Content-Length: abc\r\n"),
        ("two content-lengths", b"Content-Length: 1\r\nContent-Length: 2\r\n"),
        ("big headers", b"X-Big: " + b"a" * 200_000 + b"\r\nContent-Length: 0\r\n"),
    ],
)
def test_rejections_by_the_http_parser_are_plain_text(http: str, name: str, head: bytes) -> None:
    store = MemoryKeyStore()
    anyio.run(ensure_demo_key, store)
    app = build_app(ServeConfig(token_delay_ms=0), keys=store)
    request = b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n"
    with run_uvicorn(app, http=http) as base:
        answer = exchange(base, request + head + b"\r\n")
    if name == "big headers" and http == "httptools":
        # Accepted by httptools: akgate answers, with its envelope (no key: 401).
        assert answer.startswith(b"HTTP/1.1 401"), answer[:100]
        assert b'"invalid_api_key"' in answer
        return
    assert answer.startswith(PLAIN_400), answer[:100]
    assert b"text/plain" in answer
    assert b"Invalid HTTP request received." in answer
