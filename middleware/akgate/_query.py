"""Credentials in the query string: removed before anything logs or forwards the request.

Clients sometimes put a key in the URL (``?api_key=...``, ``?key=...``). akgate never accepts a
key there, and the URL must not carry it further: the server's access log prints the query
string, and a provider would forward it upstream. The outermost akgate layer therefore removes
such parameters from ``scope["query_string"]`` **in place** (the server logs from its own scope
object, which a copy would not change).
"""

from __future__ import annotations

import re
from typing import Final

from ._types import Scope

__all__ = ["scrub_query"]

#: Parameter names that carry credentials (compared case-insensitively, '-' and '_' alike).
_CREDENTIAL_NAMES: Final = frozenset(
    {
        "key",
        "apikey",
        "api_key",
        "x_api_key",
        "token",
        "access_token",
        "auth",
        "authorization",
        "bearer",
        "secret",
        "password",
        "client_secret",
    }
)
#: A value that is an akgate key, a typical provider key or a bearer header, wherever it appears.
_SECRET_VALUE: Final = re.compile(rb"(?i)^(ak_(live|test)_|sk-|bearer(\+|%20| ))")
#: Cheap pre-check: a query without any of these cannot need scrubbing.
_SUSPECT: Final = re.compile(rb"(?i)key|token|auth|bearer|secret|password|ak_|sk-")


def _is_credential(pair: bytes) -> bool:
    name, _, value = pair.partition(b"=")
    normalized = name.lower().replace(b"-", b"_").replace(b"%2d", b"_").replace(b"%5f", b"_")
    if normalized.decode("latin-1") in _CREDENTIAL_NAMES:
        return True
    return _SECRET_VALUE.match(value) is not None


def scrub_query(scope: Scope) -> bool:
    """Remove credential parameters from ``scope["query_string"]`` in place; True if any was."""
    query: bytes = scope.get("query_string", b"")
    if not query or _SUSPECT.search(query) is None:
        return False
    pairs = query.split(b"&")
    kept = [pair for pair in pairs if not _is_credential(pair)]
    if len(kept) == len(pairs):
        return False
    scope["query_string"] = b"&".join(kept)
    return True
