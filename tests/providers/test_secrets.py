"""``UpstreamProvider`` keeps credentials out of its ``repr()``."""

from __future__ import annotations

import httpx
import pytest

from akgate.providers import UpstreamProvider


def test_repr_hides_url_credentials_and_the_key() -> None:
    provider = UpstreamProvider(
        "https://user:hunter2@llm.example:8443/v1?key=sk-in-query", api_key="sk-secret"
    )
    shown = repr(provider)
    assert shown == "UpstreamProvider('https://llm.example:8443/v1', name='upstream')"
    for secret in ("hunter2", "sk-in-query", "sk-secret", "user"):
        assert secret not in shown


async def _post_through(provider: UpstreamProvider) -> httpx.Response:
    transport = httpx.ASGITransport(app=provider)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        return await client.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
        )


@pytest.mark.parametrize(
    "body",
    [
        b'{"error": {"message": "Incorrect API key provided: sk-secret-123", "type": "x"}}',
        b"bad key sk-secret-123",
    ],
    ids=["envelope", "text"],
)
async def test_an_upstream_echoing_the_key_never_reaches_the_client(
    body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    def upstream(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer sk-secret-123"
        return httpx.Response(401, content=body)

    client = httpx.AsyncClient(transport=httpx.MockTransport(upstream))
    provider = UpstreamProvider("https://llm.example/v1", api_key="sk-secret-123", client=client)
    response = await _post_through(provider)
    await client.aclose()
    assert response.status_code == 401
    assert b"sk-secret-123" not in response.content
    # What the upstream said about the operator's key goes to the log only, scrubbed.
    assert b"bad key" not in response.content
    assert b"Incorrect" not in response.content
    assert "[redacted]" in caplog.text
    assert "sk-secret-123" not in caplog.text
