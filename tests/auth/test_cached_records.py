"""A key seen before whose record its store has cached is authenticated without a coroutine
(``APIKeyAuth._known_record``), with the answer the full path (``_authenticate``) gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from akgate.auth import APIKeyAuth, MemoryKeyStore, SQLiteKeyStore, new_key_record
from akgate.auth._keys import KeyRecord
from akgate.context import RequestContext
from akgate.errors import GatewayError
from tests.auth.conftest import inner_app

NOW = 1_700_000_000.0


class Ticks:
    """A monotonic clock for the store's cache, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def full_path(auth: APIKeyAuth, headers: list[tuple[bytes, bytes]]) -> Any:
    """What the layer's full path gives: a record, or the error's code."""
    try:
        return await auth._authenticate({"headers": headers}, RequestContext())
    except GatewayError as err:
        return err.code


STATES = st.fixed_dictionaries(
    {
        "environment": st.sampled_from(["live", "test"]),
        "expires_in": st.sampled_from([None, -1.0, 0.0, 50.0]),
        "revoked": st.booleans(),
        "allow_test_keys": st.booleans(),
        "pepper": st.sampled_from([None, "pepper"]),
        "sqlite": st.booleans(),
        "ticks": st.lists(st.sampled_from([0.0, 1.0, 3.0]), max_size=4),
    }
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(STATES)
async def test_a_known_record_is_what_the_full_path_returns(
    tmp_path: Path, state: dict[str, Any]
) -> None:
    expires = state["expires_in"]
    new = new_key_record(
        environment=state["environment"],
        pepper=state["pepper"],
        now=NOW - 100,
        expires_at=None if expires is None else NOW + expires,
    )
    ticks = Ticks()
    store: Any
    if state["sqlite"]:
        store = SQLiteKeyStore(tmp_path / f"{new.key_id}.db", cache_ttl=2.0, clock=ticks)
        await store.add(new.record)
    else:
        store = MemoryKeyStore([new.record])
    auth = APIKeyAuth(
        inner_app,
        store=store,
        pepper=state["pepper"],
        allow_test_keys=state["allow_test_keys"],
        clock=lambda: NOW,
    )
    headers = [(b"authorization", b"Bearer " + new.key.encode())]
    first = await full_path(auth, headers)  # remembers the key when the store knew it
    if state["revoked"]:
        assert await store.revoke(new.key_id, at=NOW - 1)
    for tick in [0.0, *state["ticks"]]:
        ticks.now += tick
        cached = store.cached(new.record.key_hash)
        known = auth._known_record(headers)
        full = await full_path(auth, headers)
        if known is not None:
            assert isinstance(full, KeyRecord)
            assert known == full
        if isinstance(full, KeyRecord) and cached is not None:
            assert known == full  # a valid key, remembered and cached: the shortcut is taken
    assert isinstance(first, KeyRecord) or first in ("expired_api_key", "insufficient_permissions")
    if state["sqlite"]:
        await store.aclose()


async def test_a_cached_key_takes_no_lookup_coroutine(tmp_path: Path) -> None:
    new = new_key_record(now=NOW - 100)
    sqlite = SQLiteKeyStore(tmp_path / "keys.db")
    await sqlite.add(new.record)
    headers = [(b"x-api-key", new.key.encode())]
    for store in (MemoryKeyStore([new.record]), sqlite):
        auth = APIKeyAuth(inner_app, store=store, clock=lambda: NOW)
        assert auth._known_record(headers) is None  # not seen yet
        assert isinstance(await full_path(auth, headers), KeyRecord)
        assert auth._known_record(headers) == new.record
    await sqlite.aclose()


async def test_a_store_subclass_is_always_asked(tmp_path: Path) -> None:
    new = new_key_record(now=NOW - 100)
    asked: list[str] = []

    class Logged(MemoryKeyStore):
        async def lookup(self, key_hash: str) -> KeyRecord | None:
            asked.append(key_hash)
            return await super().lookup(key_hash)

    auth = APIKeyAuth(inner_app, store=Logged([new.record]), clock=lambda: NOW)
    headers = [(b"x-api-key", new.key.encode())]
    for _ in range(2):
        assert isinstance(await full_path(auth, headers), KeyRecord)
        assert auth._known_record(headers) is None
    assert len(asked) == 2


@pytest.mark.parametrize("ttl", [0.0, 2.0])
async def test_the_sqlite_cache_answers_only_when_lookup_would_from_it(
    tmp_path: Path, ttl: float
) -> None:
    new = new_key_record(now=NOW - 100)
    ticks = Ticks()
    store = SQLiteKeyStore(tmp_path / "keys.db", cache_ttl=ttl, clock=ticks)
    await store.add(new.record)
    key_hash = new.record.key_hash
    assert store.cached(key_hash) is None
    assert await store.lookup(key_hash) == new.record
    assert store.cached(key_hash) == (new.record if ttl else None)
    ticks.now += 2.0  # expired
    assert store.cached(key_hash) is None
    await store.revoke(new.key_id)
    assert store.cached(key_hash) is None
    assert (await store.lookup(key_hash)).revoked  # type: ignore[union-attr]
    await store.aclose()
