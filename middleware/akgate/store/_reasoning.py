"""Encrypted reasoning (``include: ["reasoning.encrypted_content"]``): reasoning carried by the
client across ``store: false`` turns, sealed with a server key ring.

A blob is ``akgr1.<key id>.<base64url(nonce | AES-256-GCM ciphertext)>``; the plaintext names the
workspace, the model and the reasoning text. Every worker must share the ring (the environment
variable, or the file ``akgate serve`` keeps beside its stores); the first key seals, every key
opens, so a key is rotated by putting a new one first and dropping the old one after the
retention you promise clients.
"""

from __future__ import annotations

import base64
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from pydantic_core import from_json, to_json

__all__ = [
    "KEYS_ENV",
    "PREFIX",
    "InvalidReasoning",
    "ReasoningKeyRing",
    "ensure_key_file",
]

#: ``kid:base64url(32 bytes)`` entries, comma-separated, the sealing key first.
KEYS_ENV: Final = "AKGATE_REASONING_KEYS"
PREFIX: Final = "akgr1"
_AAD: Final = b"akgate reasoning v1"


class InvalidReasoning(ValueError):
    """A blob that cannot be used here; ``reason`` is the ``input_transformations`` reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class ReasoningKeyRing:
    """AES-256-GCM keys by id; the first one seals."""

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not keys:
            raise ValueError("a reasoning key ring needs at least one key")
        self._ciphers: dict[str, AESGCM] = {}
        for kid, key in keys.items():
            if not kid or "." in kid or "," in kid or ":" in kid:
                raise ValueError(f"invalid reasoning key id {kid!r}")
            if len(key) != 32:
                raise ValueError(f"reasoning key {kid!r} must be 32 bytes")
            self._ciphers[kid] = AESGCM(key)
        self.current = next(iter(keys))

    def __repr__(self) -> str:
        return f"ReasoningKeyRing(keys={list(self._ciphers)})"  # never the keys

    @classmethod
    def parse(cls, spec: str) -> ReasoningKeyRing:
        """From ``kid:base64url-key[,kid:key...]`` (the environment variable's form)."""
        keys: dict[str, bytes] = {}
        for entry in spec.split(","):
            kid, sep, encoded = entry.strip().partition(":")
            if not sep:
                raise ValueError(f"{KEYS_ENV} entries look like kid:base64url-key")
            try:
                keys[kid] = _b64decode(encoded)
            except ValueError:
                raise ValueError(f"reasoning key {kid!r} is not base64url") from None
        return cls(keys)

    @classmethod
    def from_env(cls) -> ReasoningKeyRing | None:
        spec = os.environ.get(KEYS_ENV)
        return cls.parse(spec) if spec else None

    def seal(self, text: str, *, workspace: str, model: str) -> str:
        nonce = os.urandom(12)
        plain = to_json({"w": workspace, "m": model, "t": text, "c": int(time.time())})
        sealed = self._ciphers[self.current].encrypt(nonce, plain, _AAD)
        return f"{PREFIX}.{self.current}.{_b64encode(nonce + sealed)}"

    def open(self, blob: Any, *, workspace: str, model: str | None) -> str:
        """The reasoning text of ``blob`` (InvalidReasoning with the reason otherwise)."""
        from cryptography.exceptions import InvalidTag

        if not isinstance(blob, str):
            raise InvalidReasoning("prefix_mismatch")
        prefix, _, rest = blob.partition(".")
        kid, _, payload = rest.partition(".")
        cipher = self._ciphers.get(kid)
        if prefix != PREFIX or cipher is None:
            raise InvalidReasoning("prefix_mismatch")  # another issuer, or a retired key
        try:
            raw = _b64decode(payload)
            value = from_json(cipher.decrypt(raw[:12], raw[12:], _AAD))
        except (ValueError, InvalidTag):
            raise InvalidReasoning("invalid_encrypted_content") from None
        if not isinstance(value, dict) or not isinstance(value.get("t"), str):
            raise InvalidReasoning("invalid_encrypted_content")
        if value.get("w") != workspace:
            raise InvalidReasoning("organization_mismatch")
        if model is not None and value.get("m") != model:
            raise InvalidReasoning("model_mismatch")
        text: str = value["t"]
        return text


def ensure_key_file(path: Path) -> str:
    """The key ring spec kept in ``path``, created (mode 0600) with one new key if missing."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = f"k{int(time.time())}:{_b64encode(secrets.token_bytes(32))}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs, once written
        for _ in range(100):
            spec = path.read_text(encoding="utf-8").strip()
            if spec:
                return spec
            time.sleep(0.01)
        raise ValueError(f"{path} stays empty: remove it to make a new key ring") from None
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(spec + "\n")
    return spec
