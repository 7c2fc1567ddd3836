"""Every layer checks its options the same way when built (docs/design.md, "The layer shape")."""

from __future__ import annotations

from typing import Any

import pytest

from akgate import (
    AdapterOptions,
    APIKeyAuth,
    MemoryKeyStore,
    MemoryResponseStore,
    MessagesAdapter,
    RequestValidation,
    ResponsesAdapter,
    Routing,
    SpendControl,
    StatefulResponses,
    gateway,
)
from akgate.messages import MessagesOptions


async def _app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - never called
    raise AssertionError


def _auth(**options: Any) -> object:
    return APIKeyAuth(_app, store=MemoryKeyStore(), **options)


def _stateful(app: Any, **options: Any) -> object:
    return StatefulResponses(app, store=MemoryResponseStore(), **options)


LAYERS = [
    _auth,
    RequestValidation,
    Routing,
    ResponsesAdapter,
    MessagesAdapter,
    _stateful,
    SpendControl,
]


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize(
    ("size", "message"),
    [(0, "must be positive"), (-1, "must be positive"), (True, "must be an integer")],
)
def test_every_layer_refuses_the_same_body_caps(layer: Any, size: object, message: str) -> None:
    with pytest.raises(ValueError, match=f"max_body_size {message}"):
        layer(max_body_size=size) if layer is _auth else layer(_app, max_body_size=size)


def test_gateway_refuses_a_zero_body_cap() -> None:
    with pytest.raises(ValueError, match="max_body_size must be positive"):
        gateway(_app, keys=MemoryKeyStore(), max_body_size=0)


@pytest.mark.parametrize(
    ("cls", "field", "allowed"),
    [
        (AdapterOptions, "reasoning_events", "summary, reasoning_text"),
        (AdapterOptions, "developer_role", "developer, system"),
        (AdapterOptions, "hosted_tools", "strict, lenient"),
        (MessagesOptions, "system_messages", "merge, keep"),
        (MessagesOptions, "count_tokens", "estimate, provider"),
    ],
)
def test_options_objects_validate_themselves(cls: Any, field: str, allowed: str) -> None:
    with pytest.raises(ValueError, match=f"{field} must be one of {allowed}, not 'x'"):
        cls(**{field: "x"})
    assert getattr(cls(), field) == allowed.split(", ")[0]


@pytest.mark.parametrize("layer", [ResponsesAdapter, MessagesAdapter])
def test_paths_must_be_absolute(layer: Any) -> None:
    with pytest.raises(ValueError, match="chat_path must start with '/', not 'v1'"):
        layer(_app, chat_path="v1")
