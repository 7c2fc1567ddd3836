"""One rule for Responses fields: every field of OpenAI's Responses API (openai-python 3.57.0,
``ResponseCreateParams``, plus ``client_metadata``) is known to the validator.

Each one, sent with a plausible value, is accepted or refused with the contract's own code, never
``unknown_field``; ``docs/validation-rules.md`` lists every one of them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from akgate.errors import GatewayError
from akgate.validation import validate_responses_request

DOCS = Path(__file__).resolve().parents[2] / "docs" / "validation-rules.md"

#: Every top-level field, with a value a client plausibly sends.
FIELDS: dict[str, Any] = {
    "access_programs": {"cyber": "standard"},
    "background": False,
    "background_options": {"completion_window": "soonest"},
    "client_metadata": {"thread_id": "t1"},
    "context_management": [{"type": "compaction", "compact_threshold": 200000}],
    "conversation": None,
    "image": {"context_compression": "auto"},
    "include": ["reasoning.encrypted_content"],
    "input": "Hi",
    "instructions": "Be brief.",
    "max_output_tokens": 256,
    "max_tool_calls": 4,
    "metadata": {"k": "v"},
    "model": "gpt-4o",
    "moderation": {"model": "omni-moderation-latest"},
    "parallel_tool_calls": True,
    "presence_penalty": 0.5,
    "frequency_penalty": -0.5,
    "previous_response_id": None,
    "prompt": None,
    "prompt_cache_key": "thread-1",
    "prompt_cache_options": {"ttl": "30m"},
    "prompt_cache_retention": "24h",
    "reasoning": {"effort": "low", "summary": "auto"},
    "safety_identifier": "user-1",
    "service_tier": "auto",
    "store": False,
    "stream": True,
    "stream_options": {"include_obfuscation": False},
    "temperature": 0.5,
    "text": {"format": {"type": "text"}, "verbosity": "low"},
    "tool_choice": "auto",
    "tools": [{"type": "function", "name": "f"}],
    "top_logprobs": 2,
    "top_p": 0.9,
    "truncation": "auto",
    "user": "user-1",
}


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_every_responses_field_is_known(field: str) -> None:
    body = {"model": "gpt-4o", "input": "Hi", field: FIELDS[field]}
    code = None
    try:
        validate_responses_request(body)
    except GatewayError as err:
        code = err.code
    assert code != "unknown_field"


def test_all_fields_together_like_an_agent_sends_them() -> None:
    validate_responses_request(dict(FIELDS))


def test_the_docs_list_every_field() -> None:
    section = DOCS.read_text().split("## Every Responses field", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`([a-z_]+)[a-z_.]*`", section))
    assert set(FIELDS) <= listed
