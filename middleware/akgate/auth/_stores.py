"""The ``KeyStore`` protocol, the in-memory store, and helpers to create keys in any store."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final, Protocol, runtime_checkable

from ._keys import Environment, KeyRecord, NewKey, generate_key, hash_key, parse_key, resolve_pepper

__all__ = [
    "KEYS_ENV",
    "UPDATABLE_FIELDS",
    "KeyStore",
    "KeyStoreUnavailable",
    "MemoryKeyStore",
    "check_changes",
    "create_key",
    "ensure_demo_key",
    "new_key_record",
]

KEYS_ENV: Final = "AKGATE_API_KEYS"
#: Fields of a stored key that :meth:`KeyStore.update` may change (the rest identify the key or
#: are fixed at creation).
UPDATABLE_FIELDS: Final = frozenset({"rate_limit_rpm"})
_SCOPE_RE: Final = re.compile(r"^[A-Za-z0-9_.:*-]{1,64}$")


class KeyStoreUnavailable(Exception):
    """The key store (or rate-limit backend) cannot answer: the request gets 503, never 401."""


@runtime_checkable
class KeyStore(Protocol):
    """Where keys live. The middleware only calls :meth:`lookup`; the CLI uses the rest.

    Implementations raise :class:`KeyStoreUnavailable` when their backend is down.
    """

    async def lookup(self, key_hash: str) -> KeyRecord | None:
        """The record whose ``key_hash`` equals ``key_hash`` (revoked ones included), or None."""
        ...

    async def add(self, record: KeyRecord) -> None:
        """Store a new record (ValueError if its ``key_id`` exists)."""
        ...

    async def list_keys(self) -> list[KeyRecord]:
        """Every record, oldest first."""
        ...

    async def revoke(self, key_id: str, *, at: float | None = None) -> bool:
        """Mark ``key_id`` revoked; False if there is no such key."""
        ...

    async def update(self, key_id: str, **changes: Any) -> KeyRecord | None:
        """Change fields of ``key_id`` in place (names in :data:`UPDATABLE_FIELDS`, checked
        with :func:`check_changes`); the updated record, or None if there is no such key.

        Like a revocation, the change reaches other processes within their lookup cache's TTL.
        """
        ...

    async def aclose(self) -> None:
        """Release connections (the store may be used again afterwards)."""
        ...


def check_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes`` validated for :meth:`KeyStore.update` (ValueError on an unknown field or a
    bad value)."""
    unknown = sorted(set(changes) - UPDATABLE_FIELDS)
    if unknown:
        raise ValueError(f"cannot update {', '.join(unknown)} (updatable: rate_limit_rpm)")
    if not changes:
        raise ValueError("nothing to update")
    rpm = changes.get("rate_limit_rpm")
    if rpm is not None and (not isinstance(rpm, int) or isinstance(rpm, bool) or rpm < 1):
        raise ValueError("rate_limit_rpm must be an integer >= 1 (None: no per-key limit)")
    return dict(changes)


def _check_tokens(kind: str, values: Iterable[str]) -> tuple[str, ...]:
    result = tuple(values)
    for value in result:
        if kind == "scope" and not _SCOPE_RE.match(value):
            raise ValueError(f"invalid scope {value!r}")
        if not value or len(value) > 256:
            raise ValueError(f"invalid {kind} entry")
    return result


def new_key_record(
    *,
    name: str = "",
    environment: Environment = "live",
    scopes: Iterable[str] = (),
    allowed_models: Iterable[str] = (),
    rate_limit_rpm: int | None = None,
    expires_at: float | None = None,
    workspace_id: str = "default",
    workspace_name: str = "default",
    profile: str = "inference",
    metadata: Mapping[str, Any] | None = None,
    pepper: str | bytes | None = None,
    key: str | None = None,
    now: float | None = None,
) -> NewKey:
    """A new key (random unless ``key`` is given) and its record, not yet stored."""
    if rate_limit_rpm is not None and rate_limit_rpm < 1:
        raise ValueError("rate_limit_rpm must be >= 1 (None: no per-key limit)")
    if key is None:
        key, key_id = generate_key(environment)
    else:
        parsed = parse_key(key.encode("utf-8", "replace"))
        if parsed is None:
            raise ValueError("not a well-formed akgate API key (ak_live_/ak_test_ + checksum)")
        key_id, environment = parsed
    record = KeyRecord(
        key_id=key_id,
        key_hash=hash_key(key, resolve_pepper(pepper)),
        name=name,
        environment=environment,
        workspace_id=workspace_id,
        workspace_name=workspace_name,
        scopes=_check_tokens("scope", scopes),
        allowed_models=_check_tokens("model", allowed_models),
        rate_limit_rpm=rate_limit_rpm,
        expires_at=expires_at,
        created_at=time.time() if now is None else now,
        profile=profile,
        metadata=dict(metadata or {}),
    )
    return NewKey(key=key, record=record)


async def create_key(store: KeyStore, **options: Any) -> NewKey:
    """Create a key in ``store`` and return it; its secret is available only here.

    Takes the keyword options of :func:`new_key_record` (``name``, ``environment``, ``scopes``,
    ``allowed_models``, ``rate_limit_rpm``, ``expires_at``, ``pepper`` ...).
    """
    for _ in range(5):
        new = new_key_record(**options)
        try:
            await store.add(new.record)
        except ValueError:
            if "key" in options:
                raise
            continue  # a 1-in-10^14 key id collision: draw again
        return new
    raise RuntimeError("could not allocate a unique key id")  # pragma: no cover


async def ensure_demo_key(
    store: KeyStore, *, name: str = "demo", pepper: str | bytes | None = None
) -> str | None:
    """On an empty store, create one ``ak_test_`` key and return its secret; else None."""
    if await store.list_keys():
        return None
    new = await create_key(store, name=name, environment="test", pepper=pepper)
    return new.key


class MemoryKeyStore:
    """Keys held in a dict, for tests, small setups and keys given in an environment variable."""

    def __init__(self, records: Iterable[KeyRecord] = ()) -> None:
        self._by_hash: dict[str, KeyRecord] = {}
        self._by_id: dict[str, str] = {}
        for record in records:
            self._add(record)

    def __repr__(self) -> str:
        return f"MemoryKeyStore({len(self._by_hash)} keys)"

    @classmethod
    def from_keys(
        cls,
        keys: Iterable[str] | Mapping[str, Mapping[str, Any]],
        *,
        pepper: str | bytes | None = None,
    ) -> MemoryKeyStore:
        """A store holding full ``keys`` (hashed here); a mapping gives per-key options.

        ``MemoryKeyStore.from_keys({key: {"name": "ci", "rate_limit_rpm": 60}})``
        """
        items: Iterable[tuple[str, Mapping[str, Any]]]
        items = keys.items() if isinstance(keys, Mapping) else ((key, {}) for key in keys)
        records = []
        for key, options in items:
            new = new_key_record(key=key, pepper=pepper, **options)
            records.append(new.record)
        return cls(records)

    @classmethod
    def from_env(cls, var: str = KEYS_ENV, *, pepper: str | bytes | None = None) -> MemoryKeyStore:
        """A store of the full keys in ``$AKGATE_API_KEYS`` (comma or whitespace separated)."""
        raw = os.environ.get(var, "")
        keys: Sequence[str] = [part for part in re.split(r"[\s,]+", raw) if part]
        for position, key in enumerate(keys, 1):
            if parse_key(key.encode("utf-8", "replace")) is None:
                # The value is never echoed: it may be a real secret pasted in the wrong place.
                raise ValueError(
                    f"${var} entry {position} of {len(keys)} is not an akgate API key "
                    "(ak_live_/ak_test_ with a valid checksum; make one with "
                    "'akgate keys generate')"
                )
        return cls.from_keys(keys, pepper=pepper)

    def _add(self, record: KeyRecord) -> None:
        if record.key_id in self._by_id:
            raise ValueError(f"duplicate key id {record.key_id}")
        self._by_hash[record.key_hash] = record
        self._by_id[record.key_id] = record.key_hash

    async def lookup(self, key_hash: str) -> KeyRecord | None:
        return self._by_hash.get(key_hash)

    def cached(self, key_hash: str) -> KeyRecord | None:
        """What :meth:`lookup` returns, without a coroutine (``APIKeyAuth``'s known keys)."""
        return self._by_hash.get(key_hash)

    async def add(self, record: KeyRecord) -> None:
        self._add(record)

    async def list_keys(self) -> list[KeyRecord]:
        return sorted(self._by_hash.values(), key=lambda r: (r.created_at, r.key_id))

    async def revoke(self, key_id: str, *, at: float | None = None) -> bool:
        key_hash = self._by_id.get(key_id)
        if key_hash is None:
            return False
        record = self._by_hash[key_hash]
        if record.revoked_at is None:
            self._by_hash[key_hash] = replace(record, revoked_at=time.time() if at is None else at)
        return True

    async def update(self, key_id: str, **changes: Any) -> KeyRecord | None:
        changes = check_changes(changes)
        key_hash = self._by_id.get(key_id)
        if key_hash is None:
            return None
        record = self._by_hash[key_hash] = replace(self._by_hash[key_hash], **changes)
        return record

    async def aclose(self) -> None:
        return None
