"""Routing's fast paths agree with the rules they replace (kept here as the reference).

Each fast path skips work on the usual input (a one-line first event, a chunk whose only
``"usage"`` is null, a request without ``gateway``/``extensions``); hypothesis checks that it
answers what the old, general rule answers on varied input.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import from_json

from akgate.routing._metadata import ChatStreamRewriter
from akgate.routing._middleware import _DROPPED, _DROPPED_WITH_KEY, _provider_scope
from akgate.routing._stream_check import MAX_EVENT_SIZE, first_event

# -- the old rules ---------------------------------------------------------------------------


def old_needs_look(complete: bytes) -> bool:
    if b"[DONE]" in complete or b'"error"' in complete:
        return True
    count = complete.count(b'"usage"')
    return count > 0 and count > (
        complete.count(b'"usage":null') + complete.count(b'"usage": null')
    )


def old_first_event(held: bytes, max_size: int = MAX_EVENT_SIZE) -> str:
    text = held.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    blocks = text.split(b"\n\n")
    for block in blocks[:-1]:
        data: list[bytes] = []
        for line in block.split(b"\n"):
            if not line or line.startswith(b":"):
                continue
            name, _, value = line.partition(b":")
            if name not in (b"data", b"event", b"id", b"retry"):
                return "bad"
            if name == b"data":
                data.append(value[1:] if value.startswith(b" ") else value)
        if not data:
            continue
        payload = b"\n".join(data)
        if payload == b"[DONE]":
            return "ok"
        try:
            value = from_json(payload)
        except ValueError:
            return "bad"
        return "ok" if isinstance(value, dict) else "bad"
    return "bad" if len(blocks[-1]) > max_size else "more"


def old_provider_scope(
    scope: dict[str, Any], body: bytes, child: Any, identity: bool
) -> dict[str, Any]:
    if identity:
        scope = {
            **scope,
            "headers": [
                h for h in scope.get("headers", ()) if h[0] not in (b"authorization", b"x-api-key")
            ],
        }
    headers = [
        (k, v)
        for k, v in scope.get("headers", ())
        if k not in (b"content-length", b"transfer-encoding")
    ]
    headers.append((b"content-length", str(len(body)).encode("latin-1")))
    new = {**scope, "headers": headers}
    new["akgate"] = child
    return new


# -- inputs ----------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from(["error", "usage", "[DONE]"])
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["usage", "error", "choices", "id", "delta", "content"]),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=8,
)
chunk_objects = st.dictionaries(
    st.sampled_from(["usage", "error", "choices", "id", "model", "x"]), json_values, max_size=5
)


@st.composite
def chunks(draw: st.DrawFn) -> bytes:
    """One or more ``data:`` events of JSON objects (compact or spaced), or ``[DONE]``."""
    events = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()) and draw(st.booleans()):
            events.append(b"data: [DONE]\n\n")
            continue
        spaced = draw(st.booleans())
        text = json.dumps(draw(chunk_objects), separators=(", ", ": ") if spaced else (",", ":"))
        events.append(b"data: " + text.encode() + b"\n\n")
    return b"".join(events)


@settings(max_examples=300, deadline=None)
@given(chunks())
def test_chat_needs_look_matches_the_counting_rule(chunk: bytes) -> None:
    rewriter = ChatStreamRewriter(lambda usage: {}, "p")
    assert rewriter._needs_look(chunk) == old_needs_look(chunk)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                [b"data: ", b"data:", b"event: x\n", b": ping\n", b"\n", b"\r\n", b"\r", b"id: 1\n"]
            ),
            st.sampled_from([b'{"a":1}', b"[DONE]", b"[1]", b"{", b"text", b""]),
            st.sampled_from([b"\n\n", b"\n", b"\r\n\r\n", b"\n\r\n"]),
        ),
        max_size=8,
    )
)
def test_first_event_matches_the_general_reading(parts: list[bytes]) -> None:
    held = b"".join(parts)
    assert first_event(held) == old_first_event(held)
    line = b"data: " + held
    assert first_event(line) == old_first_event(line)


header_names = st.sampled_from(
    [b"authorization", b"x-api-key", b"content-length", b"transfer-encoding", b"host", b"x-a"]
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(header_names, st.binary(max_size=3)), max_size=8),
    st.binary(max_size=20),
    st.booleans(),
)
def test_provider_scope_matches_the_two_copies_it_replaces(
    headers: list[tuple[bytes, bytes]], body: bytes, identity: bool
) -> None:
    scope = {"type": "http", "path": "/v1/chat/completions", "headers": headers, "akgate": 1}
    child = object()
    new = _provider_scope(scope, body, child, _DROPPED_WITH_KEY if identity else _DROPPED)  # type: ignore[arg-type]
    assert new == old_provider_scope(scope, body, child, identity)
    assert list(new) == list(old_provider_scope(scope, body, child, identity))
    assert scope["headers"] == headers  # the client's scope is not touched


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["model", "gateway", "extensions", "messages", "stream", "a", "b"]),
        st.integers(),
        max_size=7,
    )
)
def test_provider_body_keeps_the_key_order_of_the_filtering_copy(payload: dict[str, Any]) -> None:
    from akgate.routing import Catalog
    from akgate.routing._middleware import Routing
    from akgate.routing._rewrite import provider_payload
    from akgate.routing._strategies import Needs

    routing = Routing(lambda s, r, c: None, catalog=Catalog.demo("app"))  # type: ignore[arg-type, return-value]
    route = routing._routes["demo"][0]
    body, _ = provider_payload(
        payload,
        "chat_completions",
        route,
        Needs(),
        stream=False,
        strip_blocked=False,
        known_providers=frozenset(),
    )
    old: dict[str, Any] = {k: v for k, v in payload.items() if k not in ("gateway", "extensions")}
    old["model"] = route.provider_model_id
    assert list(body) == list(old)
    assert body == old
    assert isinstance(body, Mapping)
