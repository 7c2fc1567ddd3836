"""``UpstreamProvider`` keeps credentials out of its ``repr()``."""

from __future__ import annotations

from akgate.providers.upstream import UpstreamProvider


def test_repr_hides_url_credentials_and_the_key() -> None:
    provider = UpstreamProvider(
        "https://user:hunter2@llm.example:8443/v1?key=sk-in-query", api_key="sk-secret"
    )
    shown = repr(provider)
    assert shown == "UpstreamProvider('https://llm.example:8443/v1', name='llm.example')"
    for secret in ("hunter2", "sk-in-query", "sk-secret", "user"):
        assert secret not in shown
