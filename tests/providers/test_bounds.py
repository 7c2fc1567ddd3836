"""``UpstreamProvider`` never holds an unbounded part of an upstream stream."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from akgate.providers import UpstreamProvider


class _Endless(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'data: {"choices":[]}\n\n'
        chunk = b"x" * (1024 * 1024)
        for _ in range(40):  # one 40 MiB event (the parser's cap is 16 MiB)
            yield chunk


async def test_stream_event_that_never_ends_gets_an_error_frame() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_Endless())

    upstream = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    provider = UpstreamProvider("http://up/v1", api_key="sk-up", client=upstream)
    gateway = httpx.AsyncClient(transport=httpx.ASGITransport(app=provider), base_url="http://gw")
    async with gateway, upstream:
        r = await gateway.post("/v1/chat/completions", json={"model": "m", "stream": True})
    frames = [f for f in r.content.split(b"\n\n") if f]
    assert frames[-1] == b"data: [DONE]"
    assert b'"code":"upstream_error"' in frames[-2]
    assert b"larger than" in frames[-2]
    assert len(r.content) < 20 * 1024 * 1024  # the rest of the event was never forwarded
