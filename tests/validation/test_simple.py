"""The plain-request fast path gives exactly the answers of the models it skips."""

from __future__ import annotations

import copy
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akgate.context import Endpoint
from akgate.errors import GatewayError
from akgate.schemas.chat_request import ChatCompletionRequest
from akgate.schemas.responses_request import ResponsesRequest
from akgate.validation import _validate
from akgate.validation._simple import is_simple_chat, is_simple_responses
from akgate.validation._validate import validate_payload

from .strategies import mutated, valid_bodies

#: Values around every boundary the fast path checks, and of every JSON kind.
VALUES = st.one_of(
    st.sampled_from(
        [None, True, False, 0, 1, 2, 3, 15, 16, 17, -1, 10**30, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    ),
    st.sampled_from([2.0000001, -0.0, -1e-9, float("inf"), float("nan"), "", "x", [], {}]),
    st.integers(-2, 20),
    st.floats(-1, 3),
    st.integers(),
    st.floats(),
    st.text(max_size=5),
)
CHAT_KEYS = ["model", "messages", "stream", "temperature", "top_p", "max_tokens"]
CHAT_KEYS += ["max_completion_tokens", "user", "n", "gateway", "functions", "tools", "stop"]
RESPONSES_KEYS = ["model", "input", "stream", "instructions", "temperature", "top_p"]
RESPONSES_KEYS += ["max_output_tokens", "user", "store", "reasoning", "text", "prompt"]
TEXT_ROLES = st.sampled_from(["system", "developer", "user", "assistant"])
ROLES = TEXT_ROLES | st.sampled_from(["tool", "function", "x"])
PLAIN_MESSAGE = st.fixed_dictionaries({"role": TEXT_ROLES, "content": st.text(max_size=5)})
MESSAGE = st.fixed_dictionaries(
    {"role": ROLES | VALUES, "content": st.text(max_size=5) | VALUES},
    optional={"name": VALUES, "tool_call_id": st.text(max_size=3), "extra": VALUES},
)
PLAIN_MESSAGES = st.lists(PLAIN_MESSAGE, min_size=1, max_size=3)
MESSAGES = st.one_of(
    PLAIN_MESSAGES,
    PLAIN_MESSAGES,
    PLAIN_MESSAGES,
    st.lists(PLAIN_MESSAGE | MESSAGE | VALUES, max_size=3),
    VALUES,
)
MODELS = st.one_of(*[st.sampled_from(["demo", "gpt-4o"])] * 3, VALUES)


#: Responses input items: mostly plain text messages (``type`` optional), some of any shape.
INPUT_ITEM = st.one_of(
    PLAIN_MESSAGE,
    PLAIN_MESSAGE.map(lambda m: {"type": "message", **m}),
    MESSAGE,
    MESSAGE.map(lambda m: {"type": "message", **m}),
    st.fixed_dictionaries({"type": VALUES | st.sampled_from(["function_call", "x"])}).map(
        lambda t: {**t, "role": "user", "content": "hi"}
    ),
    VALUES,
)
INPUT_ITEMS = st.lists(INPUT_ITEM, max_size=3)


@st.composite
def near_simple(
    draw: st.DrawFn, keys: list[str], required: str, value: st.SearchStrategy[Any]
) -> dict[str, Any]:
    """Mostly plain requests with one or two options of any value (or a field missing)."""
    payload: dict[str, Any] = {
        "model": draw(MODELS),
        required: draw(value),
    }
    options = [k for k in keys if k not in payload]
    payload |= draw(st.dictionaries(st.sampled_from(options), VALUES, max_size=2))
    for key in draw(st.lists(st.sampled_from(["model", required]), max_size=1)):
        del payload[key]
    return payload


def outcome(endpoint: Endpoint, payload: dict[str, Any], fast: bool) -> Any:
    payload = copy.deepcopy(payload)
    warnings: list[tuple[str, str, str]] = []

    def warn(*args: str) -> None:
        warnings.append(args)  # type: ignore[arg-type]

    simple = None if fast else {"chat_completions": _no, "responses": _no}
    with mock.patch.dict(_validate.SIMPLE, simple or {}):
        try:
            changed = validate_payload(endpoint, payload, warn=warn, unknown_fields="warn")
        except GatewayError as err:
            return ("error", err.code, err.param, err.message)
    return ("ok", changed, payload, warnings)


def _no(payload: dict[str, Any]) -> bool:
    return False


def check_same(endpoint: Endpoint, payload: dict[str, Any]) -> None:
    assert outcome(endpoint, payload, fast=True) == outcome(endpoint, payload, fast=False)


@settings(max_examples=400, deadline=None)
@given(near_simple(CHAT_KEYS, "messages", MESSAGES))
def test_chat_fast_path_matches_the_model(payload: dict[str, Any]) -> None:
    if is_simple_chat(payload):
        ChatCompletionRequest.model_validate(payload)  # the model says yes as well
    check_same("chat_completions", payload)


@settings(max_examples=400, deadline=None)
@given(
    near_simple(
        RESPONSES_KEYS,
        "input",
        st.one_of(*[st.text(max_size=5)] * 2, INPUT_ITEMS, INPUT_ITEMS, VALUES),
    )
)
def test_responses_fast_path_matches_the_model(payload: dict[str, Any]) -> None:
    if is_simple_responses(payload):
        ResponsesRequest.model_validate(payload)
    check_same("responses", payload)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_schema_drawn_bodies_get_the_same_answers(data: st.DataObject) -> None:
    for endpoint, model in (
        ("chat_completions", ChatCompletionRequest),
        ("responses", ResponsesRequest),
    ):
        check_same(endpoint, data.draw(valid_bodies(model)))  # type: ignore[arg-type]
        check_same(endpoint, data.draw(mutated(model)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("check", "payload"),
    [
        (is_simple_chat, {"model": "demo", "messages": [{"role": "user", "content": "hi"}]}),
        (
            is_simple_chat,
            {
                "model": "demo",
                "messages": [{"role": "system", "content": ""}, {"role": "user", "content": "q"}],
                "stream": True,
                "temperature": 0,
                "max_tokens": 5,
            },
        ),
        (is_simple_responses, {"model": "demo", "input": "hi", "max_output_tokens": 16}),
    ],
)
def test_what_clients_send_most_takes_the_fast_path(check: Any, payload: dict[str, Any]) -> None:
    # The plain bodies of the SDKs' quick starts skip the model (the point of the fast path).
    assert check(payload)


@pytest.mark.parametrize(
    "payload",
    [
        {"model": "demo", "messages": []},
        {"model": "", "messages": [{"role": "user", "content": "hi"}]},
        {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "stream": 1},
        {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "temperature": True},
        {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0},
        {"model": "demo", "messages": [{"role": ["user"], "content": "hi"}]},
        {"model": "demo", "messages": [{"role": "tool", "content": "hi"}]},
        {"messages": [{"role": "user", "content": "hi"}], "gateway": {"models": ["demo"]}},
    ],
)
def test_anything_else_goes_to_the_model(payload: dict[str, Any]) -> None:
    assert not is_simple_chat(payload)


#: Each boundary the fast path checks, with a value just inside and just outside it.
BOUNDARIES = [None, True, False, 0, 1, 2, 3, 15, 16, 17, -1, 10**30, 0.0, -0.0, 0.5, 1.0]
BOUNDARIES += [1.0000001, 1.5, 2.0, 2.0000001, -1e-9, 15.0, 16.0, float("inf"), float("nan")]
BOUNDARIES += ["", "x", [], {}, ["x"], {"a": 1}]


@pytest.mark.parametrize(
    ("endpoint", "base", "keys"),
    [
        (
            "chat_completions",
            {"model": "demo", "messages": [{"role": "user", "content": "hi"}]},
            CHAT_KEYS,
        ),
        ("responses", {"model": "demo", "input": "hi"}, RESPONSES_KEYS),
    ],
)
def test_every_option_at_every_boundary(
    endpoint: Endpoint, base: dict[str, Any], keys: list[str]
) -> None:
    for key in keys:
        for value in BOUNDARIES:
            check_same(endpoint, {**base, key: value})
    for role in ["system", "developer", "user", "assistant", "tool", "function", "", 1, None]:
        for content in ["", "hi", None, 1, [], [{"type": "text", "text": "hi"}]]:
            message = {"role": role, "content": content}
            check_same("chat_completions", {**base, "messages": [message]})
            check_same("chat_completions", {**base, "messages": [message, {**message, "x": 1}]})
            for kind in [None, "message", "function_call", "", 1]:
                item = message if kind is None else {"type": kind, **message}
                plain = {"model": "demo", "input": [item]}
                check_same("responses", plain)
                check_same("responses", {**plain, "input": [item, {**item, "id": "m"}]})
    check_same("responses", {"model": "demo", "input": []})
