"""akgate's own HTTP/1.1 client (``providers/_upstream_h1.py``), the default for direct
upstreams: framing, keep-alive, pool limits, decoding, failures, and when it is not used."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from akgate.providers import UpstreamProvider
from akgate.providers._upstream_h1 import H1Pool, _Connection
from akgate.providers._upstream_http import ClientOptions
from tests.providers._harness import call, sse_data
from tests.providers.test_upstream import HELLO, STREAM, URL, post

CHAT = json.dumps({"id": "c1", "object": "chat.completion", "choices": []}).encode()


def whole(body: bytes, *extra: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + b"".join(extra)
    return head + b"content-length: %d\r\n\r\n" % len(body) + body


def chunked(events: list[bytes]) -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        + body
    )


class RawUpstream:
    """A TCP server answering each request with ``answer(request_number)``; counts connections
    and closes after an answer when ``close_after`` says so."""

    def __init__(self, answer: Callable[[int], bytes], close_after: bool = False) -> None:
        self.answer = answer
        self.close_after = close_after
        self.connections = 0
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                writer.write(self.answer(len(self.requests)))
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    """A server on 127.0.0.1 running ``handler`` per connection; yields the base URL. On exit
    the handlers still running are cancelled and awaited (no socket outlives the test)."""
    tasks: set[asyncio.Task[None]] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(tracked, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def forward(upstream: RawUpstream, payload: Any = HELLO, **options: Any) -> Any:
    async with serving(upstream.handle) as base:
        provider = UpstreamProvider(base, **options)
        try:
            return await post(provider, URL, payload), provider
        finally:
            await provider.aclose()


async def test_is_the_default_for_a_direct_upstream_and_reuses_its_connection() -> None:
    upstream = RawUpstream(lambda n: whole(CHAT))
    async with serving(upstream.handle) as base:
        provider = UpstreamProvider(base, api_key="sk-up")
        try:
            for _ in range(3):
                response = await post(provider, URL, HELLO)
                assert response.status_code == 200
                assert response.json()["id"] == "c1"
            assert provider.client._h1 is not None  # this client, not aiohttp's
        finally:
            await provider.aclose()
    assert upstream.connections == 1  # kept alive
    first = upstream.requests[0]
    assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:")
    assert b"authorization: Bearer sk-up\r\n" in first
    assert b"accept-encoding: identity\r\n" in first
    assert json.loads(first.split(b"\r\n\r\n", 1)[1]) == HELLO


async def test_a_connection_the_upstream_closes_is_not_reused() -> None:
    upstream = RawUpstream(lambda n: whole(CHAT, b"connection: close\r\n"), close_after=True)
    async with serving(upstream.handle) as base:
        provider = UpstreamProvider(base)
        try:
            for _ in range(3):
                assert (await post(provider, URL, HELLO)).status_code == 200
        finally:
            await provider.aclose()
    assert upstream.connections == 3


async def test_a_chunked_stream_is_forwarded_event_by_event() -> None:
    events = [b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n', b"data: [DONE]\n\n"]
    response, _ = await forward(RawUpstream(lambda n: chunked(events)), STREAM)
    assert response.status_code == 200
    assert response.content == b"".join(events)
    assert (
        "transfer-encoding" not in response.headers
        or response.headers["transfer-encoding"] == "chunked"
    )


async def test_a_body_that_ends_with_the_connection_is_read_whole() -> None:
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n" + CHAT
    response, _ = await forward(RawUpstream(lambda n: answer, close_after=True))
    assert response.status_code == 200
    assert response.content == CHAT


async def test_an_interim_100_continue_is_skipped() -> None:
    response, _ = await forward(
        RawUpstream(lambda n: b"HTTP/1.1 100 Continue\r\n\r\n" + whole(CHAT))
    )
    assert response.status_code == 200
    assert response.content == CHAT


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        (b"gzip", gzip.compress),
        (b"deflate", zlib.compress),
        (b"deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some send it
    ],
)
async def test_a_compressed_answer_is_decoded(
    encoding: bytes, encode: Callable[[bytes], bytes]
) -> None:
    body = encode(CHAT)
    answer = whole(body, b"content-encoding: " + encoding + b"\r\n")
    response, _ = await forward(RawUpstream(lambda n: answer))
    assert response.status_code == 200
    assert response.content == CHAT
    assert "content-encoding" not in response.headers


async def test_an_unknown_content_encoding_is_a_502() -> None:
    answer = whole(b"xx", b"content-encoding: br\r\n")
    response, _ = await forward(RawUpstream(lambda n: answer))
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error"


async def test_a_malformed_answer_is_a_502() -> None:
    response, _ = await forward(RawUpstream(lambda n: b"HTTP/1.1 abc\r\n\r\n", close_after=True))
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error"


async def test_an_answer_cut_short_is_a_502() -> None:
    cut = whole(CHAT)[:-5]
    response, _ = await forward(RawUpstream(lambda n: cut, close_after=True))
    assert response.status_code == 502


async def test_a_refused_connection_is_a_502() -> None:
    async with serving(RawUpstream(lambda n: b"").handle) as base:
        pass
    provider = UpstreamProvider(base)
    try:
        response = await post(provider, URL, HELLO)
    finally:
        await provider.aclose()
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error"


async def test_a_header_with_a_line_break_is_never_sent() -> None:
    upstream = RawUpstream(lambda n: whole(CHAT))
    response, _ = await forward(upstream, headers={"x-team": "a\r\nx-smuggled: 1"})
    assert response.status_code == 502
    assert upstream.requests == []


async def test_max_connections_queues_requests_on_the_pool() -> None:
    upstream = RawUpstream(lambda n: whole(CHAT))
    async with serving(upstream.handle) as base:
        provider = UpstreamProvider(base, max_connections=1)
        try:
            responses = await asyncio.gather(*(post(provider, URL, HELLO) for _ in range(4)))
        finally:
            await provider.aclose()
    assert [r.status_code for r in responses] == [200] * 4
    assert upstream.connections == 1


async def test_waiting_longer_than_pool_timeout_is_a_504() -> None:
    held = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        held.set()
        await asyncio.sleep(5)  # never answers within the test

    async with serving(hold) as base:
        provider = UpstreamProvider(base, max_connections=1, pool_timeout=0.2)
        first = asyncio.ensure_future(post(provider, URL, HELLO))
        try:
            await held.wait()
            second = await post(provider, URL, HELLO)
        finally:
            first.cancel()
            await asyncio.gather(first, return_exceptions=True)
            await provider.aclose()
    assert second.status_code == 504
    assert second.json()["error"]["code"] == "upstream_timeout"


async def test_a_proxied_upstream_uses_another_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    provider = UpstreamProvider("https://api.example.com/v1")
    assert provider.client._h1_pool("https://api.example.com/v1/chat/completions") is None
    with_credentials = UpstreamProvider("http://user:pw@127.0.0.1:9/v1")
    assert with_credentials.client._h1_pool("http://user:pw@127.0.0.1:9/v1/models") is None


async def test_a_stream_the_client_leaves_closes_the_upstream_connection() -> None:
    closed = asyncio.Event()

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        try:
            while True:
                event = b'data: {"choices":[]}\n\n'
                writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                await writer.drain()
                await asyncio.sleep(0.01)
        except ConnectionError:
            pass
        finally:
            closed.set()

    async with serving(endless) as base:
        provider = UpstreamProvider(base)
        try:
            sent = await call(provider, STREAM, disconnect_after_bodies=2)
            assert sse_data(sent)
            await asyncio.wait_for(closed.wait(), 5)
        finally:
            await provider.aclose()


# --- the parser, fed in arbitrary pieces ---------------------------------------------------


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def writelines(self, data: Any) -> None:
        for piece in data:
            self.write(piece)

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _exchange_in_pieces(answer: bytes, cuts: list[int]) -> tuple[int, bytes, bool]:
    options = ClientOptions(10, 10, 10, 10, 10, 30, None)
    pool = H1Pool(options, asyncio.get_running_loop())
    connection = _Connection(pool)
    pool._origin[connection] = ("http", "h", 80)  # as _connect registers it
    transport = _Transport()
    connection.connection_made(transport)
    pending = asyncio.ensure_future(connection.exchange(b"POST /v1/x HTTP/1.1\r\n\r\n", b"{}"))
    await asyncio.sleep(0)
    bounds = [0, *sorted(set(cuts)), len(answer)]

    async def feed() -> None:
        for start, end in itertools.pairwise(bounds):
            connection.data_received(answer[start:end])
            await asyncio.sleep(0)

    feeder = asyncio.ensure_future(feed())
    response = await pending
    body = b"".join([chunk async for chunk in response.chunks()])
    await feeder
    await response.aclose()
    return response.status, body, transport.closed


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    events=st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=8),
    framing=st.sampled_from(["chunked", "length"]),
)
def test_any_split_of_an_answer_reads_the_same_body(
    events: list[bytes], cuts: list[int], framing: str
) -> None:
    body = b"".join(events)
    answer = chunked(events) if framing == "chunked" else whole(body)
    cuts = [c for c in cuts if c < len(answer)]
    status, read, closed = asyncio.run(_exchange_in_pieces(answer, cuts))
    assert (status, read) == (200, body)
    assert not closed  # read to its end: the connection goes back to the pool


async def test_bytes_on_an_idle_connection_retire_it() -> None:
    connections: list[int] = []

    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        writer.write(whole(CHAT))
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"HTTP/1.1 200 OK\r\n")  # unasked: this connection is not to be trusted
        await writer.drain()
        await reader.read()  # until the client closes it

    async with serving(chatty) as base:
        provider = UpstreamProvider(base)
        try:
            first = await post(provider, URL, HELLO)
            await asyncio.sleep(0.2)
            second = await post(provider, URL, HELLO)
        finally:
            await provider.aclose()
    assert (first.status_code, second.status_code) == (200, 200)
    assert len(connections) == 2


# --- TLS -----------------------------------------------------------------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and its key), signed by itself."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "akgate test upstream")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.mark.parametrize("trusted", [True, False])
async def test_an_https_upstream_is_verified(
    trusted: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    upstream = RawUpstream(lambda n: whole(CHAT))
    if trusted:  # the system store plus this certificate, as an operator would set it up
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0, ssl=context)
    base = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
    provider = UpstreamProvider(base)
    try:
        response = await post(provider, URL, HELLO)
        own_client = provider.client._h1 is not None
    finally:
        await provider.aclose()
        server.close()
        await server.wait_closed()
    assert own_client
    if trusted:
        assert response.status_code == 200
        assert response.content == CHAT
    else:  # a certificate nobody vouches for: refused before a byte of the request leaves
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "upstream_error"
        assert upstream.requests == []


# --- the exchange's deadline ---------------------------------------------------------------


class _Scope:
    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.moves = 0

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "deadline" and "deadline" in self.__dict__:
            self.__dict__["moves"] += 1
        self.__dict__[name] = value


@given(
    first_byte=st.floats(min_value=0.1, max_value=200),
    idle=st.floats(min_value=0.1, max_value=200),
    gaps=st.lists(st.floats(min_value=0, max_value=30), min_size=1, max_size=30),
)
def test_after_any_data_a_stall_is_cut_between_0_9_and_1_idle_limit(
    first_byte: float, idle: float, gaps: list[float]
) -> None:
    from akgate.providers._upstream import _Exchange

    provider = UpstreamProvider(
        "http://127.0.0.1:9/v1", first_byte_timeout=first_byte, idle_timeout=idle
    )
    now = [1000.0]
    exchange = _Exchange(provider, None, None, "chat", "req_1")  # type: ignore[arg-type]
    exchange.clock = lambda: now[0]
    scope = _Scope(now[0] + first_byte)
    exchange.deadline = scope.deadline
    exchange.scope = scope  # type: ignore[assignment]
    for gap in gaps:
        now[0] += gap
        if now[0] >= scope.deadline:
            break  # the exchange was cut before this data
        exchange._progress()
        assert now[0] + 0.9 * idle - 1e-9 <= scope.deadline <= now[0] + idle + 1e-9
        assert exchange.deadline == scope.deadline


def test_a_quick_answer_does_not_move_the_deadline() -> None:
    from akgate.providers._upstream import _Exchange

    provider = UpstreamProvider("http://127.0.0.1:9/v1", read_timeout=120)
    exchange = _Exchange(provider, None, None, "chat", "req_1")  # type: ignore[arg-type]
    exchange.clock = lambda: 1000.001  # the answer's bytes, a millisecond after the start
    scope = _Scope(1000.0 + 120)
    exchange.deadline = scope.deadline
    exchange.scope = scope  # type: ignore[assignment]
    exchange._progress()
    exchange._progress()
    assert scope.moves == 0  # no timer rescheduled: 120 s from the start is within the rule
