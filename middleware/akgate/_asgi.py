"""Small ASGI toolkit shared by the layers: body reading and replay, JSON replies, headers.

Rules kept here so that no layer has to remember them:

* the body is read at most once per stack (cached on the :class:`~akgate.context.RequestContext`),
  with a size cap checked against ``Content-Length`` first and then while reading (chunked bodies);
* an inner app gets the body replayed exactly once, then the real ``receive`` (so disconnects
  still arrive, and Django/Starlette disconnect watchers keep working);
* a rewritten body travels with a rewritten ``Content-Length`` in a copied scope.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any, Final

from pydantic_core import from_json, to_json

from ._types import Message, Receive, Scope, Send
from .context import RequestContext
from .errors import GatewayError

__all__ = [
    "CR",
    "DEFAULT_MAX_BODY_SIZE",
    "JSON_ANSWER",
    "LF",
    "ClientDisconnected",
    "answer_lifespan",
    "dumps",
    "find_header",
    "get_header",
    "parse_json_object",
    "payload_too_large",
    "read_body",
    "read_request_json",
    "replay_receive",
    "response_cap",
    "route_path",
    "scope_with_body",
    "scope_with_path",
    "send_json",
]

DEFAULT_MAX_BODY_SIZE: Final = 32 * 1024 * 1024

#: ``\r`` and ``\n`` as ints, for ``CR in chunk``: an int operand of ``in`` is searched for
#: directly, a bytes one is first tried as an int (a TypeError raised and cleared), and ``find``
#: parses its arguments: a quarter to a third of the cost of either, per check.
CR: Final = 0x0D
LF: Final = 0x0A
#: ``%`` as an int, for the escape check of every request's ``raw_path``
#: (``akgate._endpoints.resolve``).
PERCENT: Final = 0x25

#: The ``RequestContext.state`` key where an in-process app (``DemoModel``) leaves
#: ``(body, object)`` while it sends a JSON answer: a layer outside that receives that very
#: ``body`` (the same object) may use the object instead of parsing the bytes again (routing
#: adds ``routing_metadata`` to it). The Responses adapter's own slot is
#: ``akgate.adapter._answer``.
JSON_ANSWER: Final = "akgate.json.answer"


class ClientDisconnected(Exception):
    """The client went away before the request body was complete: nothing is to be sent."""


def get_header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower-case bytes) in ``scope``."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


def find_header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of ``name`` (lower-case) in a header list, matching case-insensitively
    (response headers from an app need not be lower-case)."""
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def route_path(scope: Scope) -> str:
    """The path below ``root_path``, as Starlette's ``get_route_path`` computes it."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path) and path != root_path:
        return path[len(root_path) :]
    return path


def response_cap(base: int, request_size: int) -> int:
    """The cap on an answer held whole, widened by what it may echo of its request.

    A Responses object echoes ``instructions``, ``tools`` and ``metadata``; a model may repeat
    its prompt. Allowing twice the request body on top of ``base`` means a request under the
    body cap can never be turned into a 5xx by the response cap, and memory stays bounded by
    the two caps.
    """
    return base + 2 * request_size


def payload_too_large(limit: int) -> GatewayError:
    """The 413 for a body over ``limit`` bytes (the same words in every layer)."""
    return GatewayError(
        "payload_too_large", f"Request body exceeds the limit of {limit} bytes.", status=413
    )


async def read_body(
    scope: Scope, receive: Receive, *, max_size: int = DEFAULT_MAX_BODY_SIZE
) -> bytes:
    """Read the whole request body, refusing more than ``max_size`` bytes.

    Raises :class:`GatewayError` (413 ``payload_too_large``) as soon as the declared or received
    size passes the cap, without reading the rest into memory, and :class:`ClientDisconnected`
    if the client leaves mid-body.
    """
    declared = get_header(scope, b"content-length")
    if declared is not None:
        try:
            if int(declared) > max_size:
                raise payload_too_large(max_size)
        except ValueError:
            raise GatewayError(
                "invalid_request", "The Content-Length header is not a number."
            ) from None
    message = await receive()
    body = message.get("body", b"")
    if (
        message["type"] == "http.request"
        and not message.get("more_body", False)
        and type(body) is bytes
    ):
        # The whole body in one message (what servers send for small bodies): as it came.
        if len(body) > max_size:
            raise payload_too_large(max_size)
        return body
    chunks: list[bytes] = []
    size = 0
    while True:
        if message["type"] != "http.request":
            # http.disconnect (or anything unexpected): the body will never be complete.
            raise ClientDisconnected
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > max_size:
                raise payload_too_large(max_size)
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
        message = await receive()


async def read_request_json(
    scope: Scope,
    receive: Receive,
    ctx: RequestContext,
    *,
    max_size: int = DEFAULT_MAX_BODY_SIZE,
) -> dict[str, Any]:
    """The request's JSON object, read and parsed once per stack (cached on ``ctx``)."""
    if ctx.payload is not None:
        return ctx.payload
    if ctx.body is None:
        ctx.body = await read_body(scope, receive, max_size=max_size)
        ctx.raw_receive = receive
    ctx.payload = parse_json_object(ctx.body)
    return ctx.payload


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Parse ``body`` as a JSON object or raise 400 ``invalid_request``.

    Rejects empty bodies, invalid UTF-8, invalid JSON (including NaN/Infinity), nesting deeper
    than the parser's recursion limit and any top-level value that is not an object.
    """
    if not body.strip():
        raise GatewayError("invalid_request", "The request body is empty; expected a JSON object.")
    try:
        value = from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        reason = str(exc)
        if "recursion limit" in reason:
            raise GatewayError(
                "invalid_request", "The request body is nested too deeply."
            ) from None
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise GatewayError("invalid_request", "The request body is not valid UTF-8.") from None
        raise GatewayError(
            "invalid_request", f"The request body is not valid JSON ({reason})."
        ) from None
    if not isinstance(value, dict):
        raise GatewayError(
            "invalid_request",
            f"The request body must be a JSON object, not {type(value).__name__}.",
        )
    # A literal like 1e400, or 1 and 400 zeros then ".0", is valid JSON that overflows to inf; it
    # could not be forwarded as JSON. The byte scans are cheap, so the tree is walked only when
    # an exponent that large, or a run of digits that long, appears.
    if _may_overflow(body) and _has_infinity(value):
        raise GatewayError("invalid_request", "A number in the request body is out of range.")
    return value


_HUGE_EXPONENT: Final = re.compile(rb"[eE][+]?0*[1-9]\d{2}")
#: Every digit to ``0`` and ``E`` to ``e`` (and ``+`` deleted): an exponent of three digits or
#: more becomes ``e000`` (see :func:`_may_have_huge_exponent`).
_DIGITS_AND_E: Final = bytes.maketrans(b"123456789E", b"000000000e")


#: A float literal with more digits than this before its point overflows (max float ~1.8e308).
_LONG_DIGIT_RUN: Final = b"0" * 309


def _may_overflow(body: bytes) -> bool:
    """Whether a number in ``body`` may be a float literal too large for a float: a huge
    exponent (:func:`_may_have_huge_exponent`) or a run of 309 digits or more.

    One translated copy serves both searches: deleting ``+`` only ever joins digits into longer
    runs, so every run the copy without the deletion has, this one has too (a longer run found
    only here just makes the caller walk the parsed value, which is exact)."""
    translated = body.translate(_DIGITS_AND_E, b"+")
    # (``find`` rather than ``in``: ``in`` first tries a bytes operand as an int and clears the
    # TypeError, which costs more than the search.)
    if translated.find(_LONG_DIGIT_RUN) >= 0:
        return True
    return translated.find(b"e000") >= 0 and _HUGE_EXPONENT.search(body) is not None


def _may_have_huge_exponent(body: bytes) -> bool:
    """Whether ``_HUGE_EXPONENT`` matches in ``body``. Searching with the expression costs
    ~15-40 ns a byte (its first class, ``[eE]``, matches all through text); every match is an
    ``e``/``E``, an optional ``+`` and three digits, which is ``e000`` in a translated copy
    (digits to ``0``, ``E`` to ``e``, ``+`` deleted: deleting only ever joins more text into a
    candidate), found in a few nanoseconds a byte. The expression only runs where it is found.
    """
    if body.translate(_DIGITS_AND_E, b"+").find(b"e000") < 0:
        return False
    return _HUGE_EXPONENT.search(body) is not None


def _has_infinity(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and math.isinf(item):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def replay_receive(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields ``body`` once, then delegates to ``receive``.

    Never returns a disconnect of its own, never replays twice (Django asserts on a second body,
    Starlette busy-spins on an endless replay).
    """
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def scope_with_body(scope: Scope, body: bytes, *, path: str | None = None) -> Scope:
    """A copy of ``scope`` whose ``Content-Length`` matches ``body`` (and path, if given)."""
    length = b"%d" % len(body)
    headers = scope.get("headers", ())
    # Whether the headers hold one ``Content-Length: length`` and no ``Transfer-Encoding``
    # (inline rather than a helper: a call less per layer that forwards a body).
    found = False
    for name, value in headers:
        if name == b"content-length":
            if found or value != length:
                found = False
                break
            found = True
        elif name == b"transfer-encoding":
            found = False
            break
    if found:
        # The common case (a body forwarded as it came): the headers already say it; the copy
        # shares them, as every layer's copy of the server's scope does.
        new_scope = {**scope}
    else:
        rewritten = [
            (k, v) for k, v in headers if k not in (b"content-length", b"transfer-encoding")
        ]
        rewritten.append((b"content-length", length))
        new_scope = {**scope, "headers": rewritten}
    return new_scope if path is None else scope_with_path(new_scope, path)


def scope_with_path(scope: Scope, path: str) -> Scope:
    """A copy of ``scope`` whose route path (below ``root_path``) is ``path``: ``path`` and
    ``raw_path`` change together, and the ``root_path`` prefix stays when ``path`` had it."""
    root_path: str = scope.get("root_path", "")
    full = root_path + path if root_path and scope["path"].startswith(root_path) else path
    return {**scope, "path": full, "raw_path": full.encode()}


def dumps(value: Any) -> bytes:
    """Compact JSON bytes (UTF-8; a stray NaN/Infinity becomes null, keeping the output JSON)."""
    return to_json(value, inf_nan_mode="null")


async def send_json(
    send: Send,
    status: int,
    value: Any,
    *,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Send ``value`` as a complete JSON response with a correct ``Content-Length``.

    ``application/json`` as OpenAI's API answers; error envelopes add ``charset=utf-8``, as the
    Auriko contract asks (``akgate.errors.send_envelope``).
    """
    body = value if isinstance(value, bytes) else dumps(value)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("latin-1")),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def answer_lifespan(receive: Receive, send: Send) -> None:
    """Complete the lifespan protocol for an app that has nothing to start or stop."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
