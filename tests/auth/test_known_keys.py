"""``APIKeyAuth`` remembers keys the store knew, parsed and hashed, and answers as if it did not.

A caller seen before skips the key's parse and hash; the store is still asked every time. The
answer (status, error code, identity) for any header sequence is the one a fresh layer gives.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from akgate._types import Message, Receive, Scope, Send
from akgate.auth import APIKeyAuth, MemoryKeyStore, new_key_record
from akgate.auth import _middleware as auth_middleware
from akgate.context import get_context

NOW = 1_700_000_000.0
LIVE = new_key_record(name="live", now=NOW - 100)
TEST = new_key_record(name="test", environment="test", now=NOW - 100)
EXPIRED = new_key_record(name="expired", now=NOW - 100, expires_at=NOW - 1)
UNSTORED = new_key_record(name="unstored", now=NOW - 100)
PEPPERED = new_key_record(name="peppered", now=NOW - 100, pepper="pepper")


def store() -> MemoryKeyStore:
    return MemoryKeyStore([k.record for k in (LIVE, TEST, EXPIRED, PEPPERED)])


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    ctx = get_context(scope)
    assert ctx is not None
    assert ctx.identity is not None
    body = ctx.identity.key_id.encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def layer(**options: Any) -> APIKeyAuth:
    return APIKeyAuth(
        app, store=options.pop("store", None) or store(), clock=lambda: NOW, **options
    )


async def call(auth: APIKeyAuth, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    scope: Scope = {
        "type": "http",
        "method": "GET",
        "path": "/v1/models",
        "raw_path": b"/v1/models",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await auth(scope, receive, send)
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, body if status == 200 else body.split(b'"code":"')[1].split(b'"')[0]


def mutations(key: str) -> st.SearchStrategy[str]:
    """The key itself and near misses: one character changed, cut, padded, another prefix."""
    return st.one_of(
        st.just(key),
        st.builds(
            lambda i, c: key[:i] + c + key[i + 1 :],
            st.integers(0, len(key) - 1),
            st.sampled_from("aZ09_-"),
        ),
        st.integers(0, len(key) - 1).map(lambda i: key[:i]),
        st.just(key + "x"),
        st.just(key.replace("ak_live_", "ak_test_").replace("ak_test_", "ak_live_", 1)),
    )


KEYS = st.sampled_from([LIVE, TEST, EXPIRED, UNSTORED, PEPPERED]).flatmap(
    lambda k: mutations(k.key)
)
HEADER = st.one_of(
    KEYS.map(lambda k: [(b"authorization", b"Bearer " + k.encode())]),
    KEYS.map(lambda k: [(b"authorization", b"bearer  " + k.encode() + b" ")]),
    KEYS.map(lambda k: [(b"x-api-key", k.encode())]),
    st.tuples(KEYS, KEYS).map(
        lambda ks: [(b"x-api-key", ks[0].encode()), (b"authorization", b"Bearer " + ks[1].encode())]
    ),
    st.just([]),
)


@settings(max_examples=150, deadline=None)
@given(
    requests=st.lists(HEADER, min_size=1, max_size=12),
    pepper=st.sampled_from([None, "pepper"]),
    allow_test_keys=st.booleans(),
)
async def test_a_warm_layer_answers_as_a_fresh_one(
    requests: list[list[tuple[bytes, bytes]]], pepper: str | None, allow_test_keys: bool
) -> None:
    warm = layer(pepper=pepper, allow_test_keys=allow_test_keys)
    for headers in requests * 2:  # every key a second time, once remembered
        fresh = layer(pepper=pepper, allow_test_keys=allow_test_keys)
        assert await call(warm, headers) == await call(fresh, headers)
    stored = {k.record.key_hash for k in (LIVE, TEST, EXPIRED, PEPPERED)}
    assert all(key_hash in stored for _, _, key_hash in warm._known.values())


async def test_a_key_seen_before_is_not_parsed_or_hashed_again(monkeypatch: Any) -> None:
    auth = layer()
    hashed: list[bytes] = []
    real_hash = auth._hash

    def counting(data: bytes) -> str:
        hashed.append(data)
        return real_hash(data)

    auth._hash = counting
    headers = [(b"authorization", b"Bearer " + LIVE.key.encode())]
    assert await call(auth, headers) == (200, LIVE.key_id.encode())

    def no_parse(raw: bytes) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(auth_middleware, "parse_key", no_parse)
    assert await call(auth, headers) == (200, LIVE.key_id.encode())
    assert len(hashed) == 1


async def test_a_remembered_key_revoked_in_the_store_is_refused() -> None:
    keys = store()
    auth = layer(store=keys)
    headers = [(b"x-api-key", LIVE.key.encode())]
    assert (await call(auth, headers))[0] == 200
    assert await keys.revoke(LIVE.key_id)
    assert await call(auth, headers) == (401, b"invalid_api_key")


async def test_unknown_keys_are_not_remembered_and_the_memory_is_bounded(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(auth_middleware, "_KNOWN_KEYS_MAX", 2)
    extra = [new_key_record(name=f"k{i}", now=NOW - 100) for i in range(3)]
    auth = layer(store=MemoryKeyStore([k.record for k in extra]))
    assert (await call(auth, [(b"x-api-key", UNSTORED.key.encode())]))[0] == 401
    assert auth._known == {}
    for key in extra:
        assert (await call(auth, [(b"x-api-key", key.key.encode())]))[0] == 200
    assert list(auth._known) == [extra[1].key.encode(), extra[2].key.encode()]
