"""The openai and auriko SDKs against a stack with APIKeyAuth."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import auriko
import httpx
import openai
import pytest

from akgate.auth import APIKeyAuth, MemoryKeyStore, MemoryRateLimiter
from tests.support.servers import run_uvicorn

from .conftest import Clock, inner_app, make_key

pytestmark = pytest.mark.server

MESSAGES: Any = [{"role": "user", "content": "hi"}]


class Keys:
    def __init__(self) -> None:
        self.good = make_key(name="good")
        self.revoked = make_key()
        self.expired = make_key(expires_at=0.0)
        self.limited = make_key(rate_limit_rpm=1)
        self.scoped = make_key(scopes=["models"])
        self.models = make_key(allowed_models=["gpt-4o-mini"])
        self.unknown = make_key()

    def store(self) -> MemoryKeyStore:
        known = [self.good, self.revoked, self.expired, self.limited, self.scoped, self.models]
        records = [k.record for k in known]
        records[1] = replace(records[1], revoked_at=1.0)
        return MemoryKeyStore(records)


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


def build(keys: Keys) -> APIKeyAuth:
    clock = Clock()
    return APIKeyAuth(
        inner_app, store=keys.store(), limiter=MemoryRateLimiter(clock=clock), clock=clock
    )


@pytest.fixture(scope="module")
def base_url(keys: Keys) -> Iterator[str]:
    with run_uvicorn(build(keys)) as url:
        yield url + "/v1"


def openai_client(keys: Keys, key: str) -> openai.AsyncOpenAI:
    transport = httpx.ASGITransport(app=build(keys))
    return openai.AsyncOpenAI(
        api_key=key,
        base_url="http://gw/v1",
        max_retries=0,
        http_client=httpx.AsyncClient(transport=transport),
    )


async def test_openai_valid_key_succeeds(keys: Keys) -> None:
    async with openai_client(keys, keys.good.key) as client:
        completion = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert completion.choices[0].message.content == "hello"


@pytest.mark.parametrize("which", ["revoked", "expired", "unknown"])
async def test_openai_bad_keys_raise_authentication_error(keys: Keys, which: str) -> None:
    async with openai_client(keys, getattr(keys, which).key) as client:
        with pytest.raises(openai.AuthenticationError):
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)


async def test_openai_malformed_key_raises_authentication_error(keys: Keys) -> None:
    async with openai_client(keys, "sk-not-ours") as client:
        with pytest.raises(openai.AuthenticationError):
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)


async def test_openai_rate_limit_raises_rate_limit_error(keys: Keys) -> None:
    async with openai_client(keys, keys.limited.key) as client:
        await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)


@pytest.mark.parametrize("which", ["scoped", "models"])
async def test_openai_forbidden_raises_permission_denied(keys: Keys, which: str) -> None:
    async with openai_client(keys, getattr(keys, which).key) as client:
        with pytest.raises(openai.PermissionDeniedError):
            await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)


def test_auriko_valid_key_succeeds_and_reads_me(keys: Keys, base_url: str) -> None:
    with auriko.Client(api_key=keys.good.key, base_url=base_url, max_retries=0) as client:
        completion = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert completion.choices[0].message.content == "hello"
        me = client.me.get()
        assert (me.key_prefix, me.key_name) == (keys.good.key_id, "good")


@pytest.mark.parametrize("which", ["revoked", "expired", "unknown"])
def test_auriko_bad_keys_raise_authentication_error(keys: Keys, base_url: str, which: str) -> None:
    with auriko.Client(
        api_key=getattr(keys, which).key, base_url=base_url, max_retries=0
    ) as client:
        with pytest.raises(auriko.AuthenticationError) as info:
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        expected = "expired_api_key" if which == "expired" else "invalid_api_key"
        assert info.value.code == expected


def test_auriko_rate_limit_raises_rate_limit_error(keys: Keys, base_url: str) -> None:
    with auriko.Client(api_key=keys.limited.key, base_url=base_url, max_retries=0) as client:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        with pytest.raises(auriko.RateLimitError):
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)


@pytest.mark.parametrize("which", ["scoped", "models"])
def test_auriko_forbidden_raises_permission_denied(keys: Keys, base_url: str, which: str) -> None:
    with (
        auriko.Client(api_key=getattr(keys, which).key, base_url=base_url, max_retries=0) as client,
        pytest.raises(auriko.PermissionDeniedError),
    ):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
