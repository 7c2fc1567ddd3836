"""Fast paths of the plan and of the usage answer what the general rules answer: a plain
request shares one empty ``Needs``, and a chat usage's plain int counts are taken as they are."""

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


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["chat_completions", "responses", "messages"]),
    st.dictionaries(
        st.sampled_from(
            [
                "model",
                "messages",
                "input",
                "tools",
                "tool_choice",
                "response_format",
                "text",
                "reasoning",
                "reasoning_effort",
                "temperature",
                "seed",
                "user",
                "stream",
                "output_config",
            ]
        ),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(0, 2),
            st.sampled_from(["high", "none", "required", "x"]),
            st.lists(
                st.fixed_dictionaries(
                    {
                        "content": st.lists(
                            st.fixed_dictionaries(
                                {
                                    "type": st.sampled_from(
                                        [
                                            "text",
                                            "image_url",
                                            "file",
                                            "input_image",
                                            "input_file",
                                            "image",
                                        ]
                                    )
                                }
                            ),
                            max_size=2,
                        )
                    }
                ),
                max_size=2,
            ),
            st.fixed_dictionaries(
                {"type": st.sampled_from(["json_object", "json_schema", "text"])}
            ),
            st.fixed_dictionaries(
                {"effort": st.sampled_from(["high", "none"]), "format": st.just({})}
            ),
        ),
        max_size=6,
    ),
)
def test_plain_requests_share_the_needs_the_general_rule_builds(
    endpoint: Any, payload: dict[str, Any]
) -> None:
    from akgate.routing._strategies import NO_NEEDS, Needs, read_needs

    needs = read_needs(payload, endpoint)
    if endpoint != "messages":
        assert needs == old_read_needs(payload, endpoint)
    if needs is NO_NEEDS:
        assert needs == Needs()
    if endpoint != "messages" and needs == Needs():
        assert needs is NO_NEEDS
    assert Needs() == NO_NEEDS  # nothing wrote to the shared one


def old_read_needs(payload: dict[str, Any], endpoint: str) -> Any:
    """The general rule: a ``Needs`` built for every request."""
    from akgate.routing._strategies import _PARAM_SET, Needs, _part_types

    if endpoint == "chat_completions":
        fmt = payload.get("response_format")
        effort = payload.get("reasoning_effort")
        parts = _part_types(payload.get("messages"))
        vision, files = "image_url" in parts, "file" in parts
    else:
        text = payload.get("text")
        fmt = text.get("format") if isinstance(text, dict) else None
        reasoning = payload.get("reasoning")
        effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
        parts = _part_types(payload.get("input"))
        vision, files = "input_image" in parts, "input_file" in parts
    structured = None
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        structured = fmt["type"]
    tools = bool(payload.get("tools"))
    return Needs(
        tools=tools,
        tool_choice_required=tools and payload.get("tool_choice") == "required",
        vision=vision,
        files=files,
        structured=structured,
        effort=effort if isinstance(effort, str) else None,
        params=tuple([k for k in payload if k in _PARAM_SET and payload[k] is not None]),
    )
