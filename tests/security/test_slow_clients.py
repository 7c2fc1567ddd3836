"""Slow clients: a body that never completes is cut off (408), fd exhaustion is logged once."""

from __future__ import annotations

import errno
import logging
import socket
import time
from typing import Any

import anyio
import pytest

from akgate import RequestBodyTimeout
from akgate._fdlog import FdExhaustionFilter
from akgate._serve import ServeConfig, build_app
from akgate._types import Message, Receive, Scope, Send
from akgate.auth import MemoryKeyStore, ensure_demo_key
from akgate.errors import ERROR_CODES
from tests.support.servers import run_uvicorn

reached: list[str] = []


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            reached.append("disconnect")
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    reached.append("body")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def run(layer: Any, path: str, chunks: list[bytes], hang: bool) -> list[Message]:
    sent: list[Message] = []
    pending = list(chunks)

    async def receive() -> Message:
        if pending:
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending) or hang}
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode()}
    scope |= {"headers": [(b"content-length", b"1000")], "query_string": b"", "root_path": ""}
    with anyio.fail_after(5):
        await layer(scope, receive, send)
    return sent


async def test_a_body_that_never_completes_gets_408_and_connection_close() -> None:
    reached.clear()
    sent = await run(RequestBodyTimeout(app, timeout=0.2), "/v1/chat/completions", [b"{"], True)
    assert reached == []  # the layers inside were cancelled while waiting for the body
    start = sent[0]
    assert start["status"] == 408
    headers = dict(start["headers"])
    assert headers[b"connection"] == b"close"
    assert headers[b"x-request-id"]
    assert b'"code":"request_timeout"' in sent[1]["body"]
    assert ERROR_CODES["request_timeout"][0] == 408


async def test_a_complete_body_is_untouched_and_app_paths_are_not_timed() -> None:
    reached.clear()
    layer = RequestBodyTimeout(app, timeout=0.2)
    sent = await run(layer, "/v1/chat/completions", [b"{", b"}"], False)
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b"{}"
    with pytest.raises(TimeoutError):  # the app's own upload path: no bound from akgate
        with anyio.fail_after(0.5):
            await run(layer, "/upload", [b"x"], True)


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout"):
        RequestBodyTimeout(app, timeout=0)


@pytest.mark.server
def test_slowloris_connections_are_closed_by_the_served_stack() -> None:
    store = MemoryKeyStore()
    key = anyio.run(ensure_demo_key, store)
    application = build_app(ServeConfig(token_delay_ms=0, body_timeout=1.0), keys=store)
    with run_uvicorn(application) as base:
        host, port = base.removeprefix("http://").split(":")
        sockets = []
        for _ in range(30):
            sock = socket.create_connection((host, int(port)), timeout=10)
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
                + f"Authorization: Bearer {key}\r\n".encode()
                + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
            )
            sockets.append(sock)
        started = time.monotonic()
        for sock in sockets:
            with sock:
                answer = b""
                while chunk := sock.recv(65536):  # ends: the server closed the connection
                    answer += chunk
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
            assert b"request_timeout" in answer
        assert time.monotonic() - started < 8


def record(message: str, exc: BaseException | None = None) -> logging.LogRecord:
    return logging.LogRecord(
        "asyncio",
        logging.ERROR,
        __file__,
        1,
        message,
        None,
        (type(exc), exc, None) if exc else None,
    )


def test_fd_exhaustion_is_logged_once_then_summarized() -> None:
    now = [0.0]
    fd_filter = FdExhaustionFilter(interval=60, clock=lambda: now[0])
    emfile = OSError(errno.EMFILE, "Too many open files")
    first = record("socket.accept() out of system resource", emfile)
    assert fd_filter.filter(first)
    assert "out of file descriptors" in first.getMessage()
    assert first.exc_info is None  # no traceback per retry
    assert not any(fd_filter.filter(record("accept failed", emfile)) for _ in range(500))
    assert not fd_filter.filter(record("[Errno 24] Too many open files"))
    now[0] = 61
    summary = record("socket.accept() out of system resource", emfile)
    assert fd_filter.filter(summary)
    assert "501 more" in summary.getMessage()
    assert fd_filter.filter(record("something else"))


async def test_large_bodies_leave_in_bounded_pieces() -> None:
    from akgate import gateway
    from akgate._pieces import PIECE_SIZE, piecewise

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    body = bytes(range(256)) * 4096  # 1 MiB
    pieces = piecewise(send)
    await pieces({"type": "http.response.body", "body": body, "more_body": True})
    await pieces({"type": "http.response.body", "body": b"tail", "more_body": False})
    assert all(len(m["body"]) <= PIECE_SIZE for m in sent)
    assert b"".join(m["body"] for m in sent) == body + b"tail"
    assert [m["more_body"] for m in sent] == [True] * (len(sent) - 1) + [False]

    async def big(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    sent.clear()
    app = gateway(big, auth=False, validation=False, routing=False, adapter=False)
    scope = {"type": "http", "method": "GET", "path": "/files/x", "headers": []}

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    await app(scope, receive, send)
    assert len(sent) == 1 + len(body) // PIECE_SIZE  # the start, then 16 pieces
