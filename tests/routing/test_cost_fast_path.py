"""``token_counts`` takes plain ints of a chat usage as they are: it answers what the general
rule (``_int`` on every count, a ``TokenCounts`` built the usual way) answers."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from akgate.routing._cost import TokenCounts, _int, _is_mapping, token_counts

counts = st.one_of(
    st.integers(-3, 10**12),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["5", 0, -1, True]),
)


def old_token_counts(usage: Any) -> TokenCounts | None:
    if not _is_mapping(usage):
        return None
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if _is_mapping(details) else 0
        return TokenCounts(
            _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")), _int(cached)
        )
    return token_counts(usage)  # (the other shapes are not changed)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["prompt_tokens", "completion_tokens", "total_tokens", "input_tokens"]),
        counts,
        max_size=4,
    ),
    st.one_of(st.none(), counts, st.dictionaries(st.sampled_from(["cached_tokens", "x"]), counts)),
)
def test_chat_token_counts_match_the_general_rule(usage: dict[str, Any], details: Any) -> None:
    if details is not None:
        usage["prompt_tokens_details"] = details
    got = token_counts(usage)
    assert got == old_token_counts(usage)
    assert got is None or type(got) is TokenCounts
    if got is not None:
        assert all(type(n) is int and n >= 0 for n in got)
        assert (got.input, got.output, got.cached) == tuple(got)
