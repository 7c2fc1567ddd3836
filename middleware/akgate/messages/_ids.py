"""Stateless, reversible mappings between chat and Anthropic tool ids and tool names.

Anthropic tool ids must match ``^[a-zA-Z0-9_-]+$``; chat backends need their own ids back byte
for byte. A conforming backend id ``X`` is shown as ``toolu_X``; any other as ``toolu_b64-``
plus its URL-safe base64, so the way back needs no state. Tool names over the chat limit of 64
characters are shortened deterministically and mapped back through the request's own tools.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from typing import Final

__all__ = ["MAX_NAME", "chat_tool_id", "client_tool_id", "new_id", "short_name"]

_SAFE: Final = re.compile(r"[A-Za-z0-9_-]+")
_PREFIX: Final = "toolu_"
_ENCODED: Final = "b64-"
MAX_NAME: Final = 64


def new_id(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(18).replace("-", "A").replace("_", "B")


def client_tool_id(chat_id: str | None) -> str:
    """The ``toolu_`` id the client sees for a backend's tool call id."""
    if not chat_id:
        return new_id(_PREFIX)
    if _SAFE.fullmatch(chat_id) and not chat_id.startswith(_ENCODED):
        return _PREFIX + chat_id
    encoded = base64.urlsafe_b64encode(chat_id.encode()).rstrip(b"=").decode()
    return _PREFIX + _ENCODED + encoded


def chat_tool_id(client_id: str) -> str:
    """The backend's id for a client ``tool_use`` id (ids from elsewhere pass unchanged)."""
    if not client_id.startswith(_PREFIX):
        return client_id
    rest = client_id[len(_PREFIX) :]
    if rest.startswith(_ENCODED):
        data = rest[len(_ENCODED) :]
        try:
            return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return client_id
    return rest or client_id


def short_name(name: str) -> str:
    """``name`` within the chat limit: long names keep a prefix and a hash of the whole."""
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return name[: MAX_NAME - 11] + "_" + digest
