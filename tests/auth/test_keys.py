"""Key format, checksum, hashing and reprs."""

from __future__ import annotations

import dataclasses
import re
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from akgate.auth import key_id_of, new_key_record
from akgate.auth._keys import (
    BASE62,
    KEY_LENGTH,
    KeyRecord,
    generate_key,
    hash_key,
    parse_key,
)
from akgate.context import Identity


def test_live_key_format() -> None:
    key, key_id = generate_key("live")
    assert re.fullmatch(r"ak_live_[0-9A-Za-z]{46}", key)
    assert key_id == key[:16]
    assert len(key) == KEY_LENGTH


def test_test_key_format() -> None:
    key, key_id = generate_key("test")
    assert key.startswith("ak_test_")
    assert parse_key(key.encode()) == (key_id, "test")


def test_keys_are_unique() -> None:
    assert len({generate_key()[0] for _ in range(200)}) == 200


def test_valid_key_parses() -> None:
    key, key_id = generate_key()
    assert parse_key(key.encode()) == (key_id, "live")


def test_mistyped_character_fails_checksum() -> None:
    key, _ = generate_key()
    i = 20
    swapped = key[:i] + ("a" if key[i] != "a" else "b") + key[i + 1 :]
    assert parse_key(swapped.encode()) is None


def test_other_prefix_is_rejected() -> None:
    key, _ = generate_key()
    assert parse_key(("sk_live_" + key[8:]).encode()) is None
    assert parse_key(b"sk-" + b"a" * 51) is None


def test_wrong_length_is_rejected() -> None:
    key, _ = generate_key()
    assert parse_key(key[:-1].encode()) is None
    assert parse_key((key + "a").encode()) is None


def test_non_base62_body_is_rejected() -> None:
    key, _ = generate_key()
    assert parse_key((key[:20] + "-" + key[21:]).encode()) is None


def test_checksum_is_crc32_base62() -> None:
    key, _ = generate_key()
    number = 0
    for char in key[-6:]:
        number = number * 62 + BASE62.index(char)
    assert number == zlib.crc32(key[:-6].encode())


@given(st.binary(max_size=80))
def test_random_bytes_never_parse(raw: bytes) -> None:
    # A random 54-byte string passes the CRC32 check with probability ~2^-32.
    assert parse_key(raw) is None


def test_hash_is_sha256_without_pepper() -> None:
    import hashlib

    assert hash_key("abc") == hashlib.sha256(b"abc").hexdigest()


def test_pepper_changes_hash() -> None:
    assert hash_key("abc", b"pepper") != hash_key("abc")


def test_key_id_of_rejects_garbage_without_echo() -> None:
    with pytest.raises(ValueError) as info:
        key_id_of("sk-secretvalue")
    assert "secretvalue" not in str(info.value)


def test_new_key_repr_hides_secret_and_hash() -> None:
    new = new_key_record(name="n")
    text = repr(new) + str(new) + repr(new.record)
    assert new.key not in text
    assert new.key[16:] not in text
    assert new.record.key_hash not in text
    assert new.key_id in text


_TEXT = st.text(max_size=5)
_RECORDS = st.builds(
    KeyRecord,
    key_id=_TEXT,
    key_hash=_TEXT,
    name=_TEXT,
    environment=st.sampled_from(["live", "test"]),
    workspace_id=_TEXT,
    workspace_name=_TEXT,
    scopes=st.lists(_TEXT, max_size=2).map(tuple),
    allowed_models=st.lists(_TEXT, max_size=2).map(tuple),
    rate_limit_rpm=st.none() | st.integers(1, 100),
    expires_at=st.none() | st.floats(0, 1e10),
    created_at=st.floats(0, 1e10),
    revoked_at=st.none() | st.floats(0, 1e10),
    profile=_TEXT,
    metadata=st.dictionaries(_TEXT, st.integers(), max_size=2),
)


@given(_RECORDS)
def test_the_identity_is_the_one_built_by_keywords(record: KeyRecord) -> None:
    # identity() binds Identity's fields positionally: each must land where its name says.
    identity = record.identity()
    by_name = Identity(
        key_id=record.key_id,
        name=record.name,
        workspace_id=record.workspace_id,
        workspace_name=record.workspace_name,
        environment=record.environment,
        scopes=record.scopes,
        allowed_models=record.allowed_models,
        rate_limit_rpm=record.rate_limit_rpm,
        expires_at=record.expires_at,
        created_at=record.created_at,
        profile=record.profile,
        metadata=dict(record.metadata),
    )
    assert dataclasses.asdict(identity) == dataclasses.asdict(by_name)
    assert identity.metadata is not record.metadata  # later layers may annotate their copy
