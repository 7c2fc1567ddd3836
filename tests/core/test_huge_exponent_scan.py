"""The request parser's scan for huge exponents: a substring pre-check in front of the regular
expression says yes exactly where the expression matches (hypothesis), and a body with such a
literal is still refused."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akgate._asgi import _HUGE_EXPONENT, _may_have_huge_exponent, parse_json_object
from akgate.errors import GatewayError

#: Bytes rich in what the expression looks at, plus anything at all.
NEAR = st.lists(
    st.one_of(
        st.sampled_from([b"e", b"E", b"+", b"-", b"0", b"1", b"9", b"5", b".", b" ", b"x", b'"']),
        st.binary(max_size=3),
    ),
    max_size=40,
).map(b"".join)


@settings(max_examples=800)
@given(body=st.one_of(NEAR, st.binary(max_size=200)))
def test_the_pre_check_agrees_with_the_expression(body: bytes) -> None:
    assert _may_have_huge_exponent(body) == (_HUGE_EXPONENT.search(body) is not None)


@settings(max_examples=300)
@given(
    mantissa=st.integers(1, 9),
    sign=st.sampled_from(["", "+", "-"]),
    zeros=st.integers(0, 3),
    exponent=st.integers(0, 999),
    letter=st.sampled_from("eE"),
    text=st.text(max_size=20),
)
def test_numbers_in_json_are_judged_as_before(
    mantissa: int, sign: str, zeros: int, exponent: int, letter: str, text: str
) -> None:
    literal = f"{mantissa}{letter}{sign}{'0' * zeros}{exponent}"
    body = json.dumps({"t": text}).encode()[:-1] + f', "n": {literal}}}'.encode()
    assert _may_have_huge_exponent(body) == (_HUGE_EXPONENT.search(body) is not None)
    value = float(literal)
    if value == float("inf"):
        with pytest.raises(GatewayError, match="out of range"):
            parse_json_object(body)
    else:
        assert parse_json_object(body) == {"t": text, "n": value}


@pytest.mark.parametrize("literal", [b"1e400", b"1E+400", b"2e0000309", b"-1e999"])
def test_an_overflowing_literal_is_refused(literal: bytes) -> None:
    with pytest.raises(GatewayError, match="out of range"):
        parse_json_object(b'{"prompt": "the 2024 weather", "n": ' + literal + b"}")
