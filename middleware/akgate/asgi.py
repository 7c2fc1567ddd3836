"""The ASGI toolkit the layers share, for your own pure-ASGI code (see ``docs/toolkit.md``).

Body reading with a size cap, JSON parsing with clean errors, replaying a body to an inner app,
and rewriting a scope for a new body. The implementation lives in ``akgate._asgi`` (which the
layers import, and which stays importable); this module is its public face.
"""

from __future__ import annotations

from ._asgi import (
    DEFAULT_MAX_BODY_SIZE,
    ClientDisconnected,
    get_header,
    parse_json_object,
    read_body,
    read_request_json,
    replay_receive,
    response_cap,
    scope_with_body,
)

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "ClientDisconnected",
    "get_header",
    "parse_json_object",
    "read_body",
    "read_request_json",
    "replay_receive",
    "response_cap",
    "scope_with_body",
]
