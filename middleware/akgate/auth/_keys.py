"""API-key format, generation, hashing and the stored key record.

A key looks like ``ak_live_<id:8><secret:32><checksum:6>`` (or ``ak_test_...``), all base62:

* ``ak_live_`` + the 8 id characters is the public key id (``ak_live_abcdefgh``) used in listings,
  logs and headers;
* the 32 secret characters come from :mod:`secrets` (about 190 bits);
* the checksum is the CRC32 of everything before it, in base62, so a mistyped or invented key is
  rejected offline, before any store lookup (GitHub's token scheme).

Only a hash is stored: SHA-256, or HMAC-SHA256 with a server-side pepper. Keys are high-entropy, so
a slow KDF would add nothing but latency on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import string
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final, Literal

from akgate.context import Identity

__all__ = [
    "KEY_ID_LENGTH",
    "KEY_LENGTH",
    "PEPPER_ENV",
    "Environment",
    "KeyRecord",
    "NewKey",
    "generate_key",
    "hash_key",
    "iso_timestamp",
    "key_id_of",
    "parse_key",
    "resolve_pepper",
]

Environment = Literal["live", "test"]

BASE62: Final = string.digits + string.ascii_letters
ID_CHARS: Final = 8
SECRET_CHARS: Final = 32
CHECKSUM_CHARS: Final = 6
PREFIXES: Final[dict[str, Environment]] = {"ak_live_": "live", "ak_test_": "test"}
PREFIX_LENGTH: Final = 8
#: Length of a full key: prefix + id + secret + checksum.
KEY_LENGTH: Final = PREFIX_LENGTH + ID_CHARS + SECRET_CHARS + CHECKSUM_CHARS
#: Length of a public key id such as ``ak_live_abcdefgh``.
KEY_ID_LENGTH: Final = PREFIX_LENGTH + ID_CHARS
PEPPER_ENV: Final = "AKGATE_KEY_PEPPER"


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        chars.append(BASE62[digit])
    return "".join(reversed(chars))


# Two base62 digits per entry: a CRC32 (< 62**6) is three lookups instead of six divmods.
_PAIRS: Final = tuple(_base62(i, 2).encode() for i in range(62 * 62))


def _checksum(head: bytes) -> bytes:
    high, rest = divmod(zlib.crc32(head), 3844 * 3844)
    middle, low = divmod(rest, 3844)
    return _PAIRS[high] + _PAIRS[middle] + _PAIRS[low]


def _random_base62(count: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(count))


def generate_key(environment: Environment = "live") -> tuple[str, str]:
    """A new random key and its public id: ``(key, key_id)``."""
    prefix = "ak_test_" if environment == "test" else "ak_live_"
    head = prefix + _random_base62(ID_CHARS + SECRET_CHARS)
    key = head + _checksum(head.encode()).decode()
    return key, key[:KEY_ID_LENGTH]


def parse_key(raw: bytes) -> tuple[str, Environment] | None:
    """``(key_id, environment)`` if ``raw`` is well formed with a valid checksum, else None.

    Works on bytes straight from the header, so nothing is decoded for a malformed value.
    """
    if len(raw) != KEY_LENGTH:
        return None
    environment = PREFIXES.get(raw[:PREFIX_LENGTH].decode("latin-1"))
    if environment is None:
        return None
    # bytes.isalnum() is ASCII-only: exactly the base62 alphabet.
    if not raw[PREFIX_LENGTH:].isalnum():
        return None
    split = KEY_LENGTH - CHECKSUM_CHARS
    if _checksum(raw[:split]) != raw[split:]:
        return None
    return raw[:KEY_ID_LENGTH].decode("ascii"), environment


def key_id_of(key: str) -> str:
    """The public id of a well-formed ``key`` (ValueError otherwise, without echoing it)."""
    parsed = parse_key(key.encode("utf-8", "replace"))
    if parsed is None:
        raise ValueError("not a well-formed akgate API key")
    return parsed[0]


def resolve_pepper(pepper: str | bytes | None) -> bytes | None:
    """The pepper to hash with: the given one, else ``$AKGATE_KEY_PEPPER``, else none."""
    if pepper is None:
        pepper = os.environ.get(PEPPER_ENV) or None
    if isinstance(pepper, str):
        pepper = pepper.encode()
    return pepper


def hash_key(key: str | bytes, pepper: bytes | None = None) -> str:
    """Hex SHA-256 of ``key`` (HMAC-SHA256 when a pepper is set)."""
    data = key.encode() if isinstance(key, str) else key
    if pepper:
        return hmac.new(pepper, data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


def iso_timestamp(epoch: float | None) -> str | None:
    """``2025-01-31T12:00:00Z`` for an epoch time (None stays None)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One stored key: everything but the secret (only its hash, kept out of the repr)."""

    key_id: str
    key_hash: str = field(repr=False)
    name: str = ""
    environment: Environment = "live"
    workspace_id: str = "default"
    workspace_name: str = "default"
    #: Endpoint scopes (empty: every endpoint); see ``akgate.auth`` docs for the vocabulary.
    scopes: tuple[str, ...] = ()
    #: Models this key may call (empty: any); ``prefix*`` matches by prefix.
    allowed_models: tuple[str, ...] = ()
    rate_limit_rpm: int | None = None
    expires_at: float | None = None
    created_at: float = 0.0
    revoked_at: float | None = None
    profile: str = "inference"
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def status(self, now: float) -> str:
        if self.revoked:
            return "revoked"
        return "expired" if self.expired(now) else "active"

    def identity(self) -> Identity:
        """A fresh :class:`~akgate.context.Identity` (later layers may annotate it)."""
        # (Positional, in Identity's field order: binds in about half the time of keywords, once
        # per authenticated request; tests/auth/test_keys.py checks it against the keyword form.)
        return Identity(
            self.key_id,
            self.name,
            self.workspace_id,
            self.workspace_name,
            self.environment,
            self.scopes,
            self.allowed_models,
            self.rate_limit_rpm,
            self.expires_at,
            self.created_at,
            self.profile,
            dict(self.metadata) if self.metadata else {},
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (used by the SQLite and Redis stores and ``keys list --json``)."""
        return {
            "key_id": self.key_id,
            "key_hash": self.key_hash,
            "name": self.name,
            "environment": self.environment,
            "workspace_id": self.workspace_id,
            "workspace_name": self.workspace_name,
            "scopes": list(self.scopes),
            "allowed_models": list(self.allowed_models),
            "rate_limit_rpm": self.rate_limit_rpm,
            "expires_at": self.expires_at,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
            "profile": self.profile,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeyRecord:
        return cls(
            key_id=data["key_id"],
            key_hash=data["key_hash"],
            name=data.get("name", ""),
            environment="test" if data.get("environment") == "test" else "live",
            workspace_id=data.get("workspace_id", "default"),
            workspace_name=data.get("workspace_name", "default"),
            scopes=tuple(data.get("scopes") or ()),
            allowed_models=tuple(data.get("allowed_models") or ()),
            rate_limit_rpm=data.get("rate_limit_rpm"),
            expires_at=data.get("expires_at"),
            created_at=data.get("created_at") or 0.0,
            revoked_at=data.get("revoked_at"),
            profile=data.get("profile", "inference"),
            metadata=dict(data.get("metadata") or {}),
        )


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just created: the secret (shown once; never in the repr) and its record."""

    key: str = field(repr=False)
    record: KeyRecord

    @property
    def key_id(self) -> str:
        return self.record.key_id
