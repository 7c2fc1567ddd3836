"""``akgate serve``'s uvicorn protocol: a response's head leaves with its body, in one write."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("httptools")

from akgate._serve import ServeConfig, _uvicorn_options
from akgate._serve_protocol import CoalescingHttpToolsProtocol, _HeadHoldingTransport
from tests.support.asgi import read_body
from tests.support.servers import run_uvicorn


class _Recorder:
    """A transport that records what reaches the socket: one entry per write call."""

    def __init__(self) -> None:
        self.calls: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.calls.append(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self.calls.append(b"".join(list_of_data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_write_buffer_size(self) -> int:
        return 0


async def test_a_head_leaves_with_the_body_that_follows_it() -> None:
    inner = _Recorder()
    holder = _HeadHoldingTransport(inner, asyncio.get_running_loop())
    holder.arm()
    holder.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert inner.calls == []
    assert holder.get_write_buffer_size() == 19
    holder.write(b"{}")
    assert inner.calls == [b"HTTP/1.1 200 OK\r\n\r\n{}"]
    holder.write(b"more")  # not armed: straight through
    assert inner.calls[-1] == b"more"


async def test_a_head_leaves_alone_once_the_task_yields() -> None:
    inner = _Recorder()
    holder = _HeadHoldingTransport(inner, asyncio.get_running_loop())
    holder.arm()
    holder.write(b"head")
    await asyncio.sleep(0)  # a stream waiting for its upstream: the head does not wait with it
    assert inner.calls == [b"head"]
    holder.write(b"chunk")
    assert inner.calls == [b"head", b"chunk"]


async def test_close_sends_the_held_head_first_and_abort_drops_it() -> None:
    loop = asyncio.get_running_loop()
    inner = _Recorder()
    holder = _HeadHoldingTransport(inner, loop)
    holder.arm()
    holder.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    holder.close()
    assert inner.calls == [b"HTTP/1.1 400 Bad Request\r\n\r\n"]
    assert inner.closed
    aborted = _Recorder()
    holder = _HeadHoldingTransport(aborted, loop)
    holder.arm()
    holder.write(b"head")
    holder.abort()
    await asyncio.sleep(0)
    assert aborted.calls == []
    assert aborted.aborted


_OPS = st.lists(
    st.one_of(
        st.just("arm"),
        st.just("yield"),
        st.binary(min_size=1, max_size=8),
        st.lists(st.binary(max_size=4), max_size=3),  # writelines
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(ops=_OPS)
def test_bytes_leave_in_order_whatever_the_writes_and_yields(ops: list[Any]) -> None:
    async def run() -> None:
        inner = _Recorder()
        holder = _HeadHoldingTransport(inner, asyncio.get_running_loop())
        written = b""
        for op in ops:
            if op == "arm":
                holder.arm()
            elif op == "yield":
                await asyncio.sleep(0)
            elif isinstance(op, list):
                holder.writelines(op)
                written += b"".join(op)
            else:
                holder.write(op)
                written += op
            # At most one head is held, and only until the next write or turn of the loop.
            assert len(written) - len(b"".join(inner.calls)) <= holder.get_write_buffer_size()
        holder.close()
        assert b"".join(inner.calls) == written
        assert inner.closed

    asyncio.run(run())


def test_akgate_serve_gives_uvicorn_the_coalescing_protocol() -> None:
    assert _uvicorn_options(ServeConfig())["http"] is CoalescingHttpToolsProtocol
    assert _uvicorn_options(ServeConfig(http="httptools"))["http"] is CoalescingHttpToolsProtocol
    assert _uvicorn_options(ServeConfig(http="h11"))["http"] == "h11"


# --- over a real uvicorn ----------------------------------------------------------------------

_WRITES: list[int] = []


class _CountingTransport:
    """The socket's transport, counting the writes that reach it."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        _WRITES.append(1)
        self._transport.write(data)

    def writelines(self, list_of_data: Any) -> None:
        _WRITES.append(1)
        self._transport.writelines(list_of_data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _Counting(CoalescingHttpToolsProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        counted: Any = _CountingTransport(transport)
        super().connection_made(counted)


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = await read_body(receive)
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for n in range(3):
            await asyncio.sleep(0.01)  # the head must not wait for these
            await send({"type": "http.response.body", "body": b"%d" % n, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    answer = b'{"echo":%d}' % len(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


@contextmanager
def _served(loop: str = "auto") -> Iterator[str]:
    # "auto": the loop akgate serve picks (uvloop, which the server extra installs).
    with run_uvicorn(_app, http=_Counting, loop=loop) as url:
        yield url


@pytest.mark.parametrize("loop", ["auto", "asyncio"])
def test_a_json_answer_is_one_write_over_uvicorn(loop: str) -> None:
    with _served(loop) as url, httpx.Client(base_url=url) as client:
        client.post("/", content=b"hi")  # the connection is open: count its answers only
        _WRITES.clear()
        answers = [client.post("/", content=b"x" * n) for n in range(20)]
        assert [a.json() for a in answers] == [{"echo": n} for n in range(20)]
        assert len(_WRITES) == 20


def test_a_stream_head_arrives_before_its_first_event() -> None:
    with _served() as url, socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as s:
        s.sendall(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
        s.settimeout(5)
        first = s.recv(65536)
        # The head arrives on its own: the app was sleeping before its first chunk.
        assert first.startswith(b"HTTP/1.1 200 OK\r\n")
        assert first.endswith(b"\r\n\r\n")
        rest = b""
        while not rest.endswith(b"0\r\n\r\n"):
            rest += s.recv(65536)
        assert rest == b"1\r\n0\r\n1\r\n1\r\n1\r\n2\r\n0\r\n\r\n"


def test_pipelined_requests_and_expect_continue_keep_their_order() -> None:
    with _served() as url, socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as s:
        s.settimeout(5)
        one = b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nab"
        s.sendall(one * 3)
        got = b""
        while got.count(b'{"echo":2}') < 3:
            got += s.recv(65536)
        assert got.count(b"HTTP/1.1 200 OK") == 3
        s.sendall(
            b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\nexpect: 100-continue\r\n\r\n"
        )
        assert s.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"abc")
        got = b""
        while not got.endswith(b'{"echo":3}'):
            got += s.recv(65536)
        assert got.startswith(b"HTTP/1.1 200 OK")
