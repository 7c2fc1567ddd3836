"""The record the spend layer builds on every request: each field from where it belongs (it is
built positionally, the cheap way), and token counts whose fast path (exact dicts and ints
first) counts what the general rule counts, for any usage a provider may send."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from akgate.context import Identity, RequestContext
from akgate.usage import MemoryLedgerBackend, SpendControl, UsageLedger
from akgate.usage._middleware import _Outcome, _token_counts
from akgate.usage._record import RECORD_COLUMNS, UsageRecord


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def reference(usage: Any) -> tuple[int, int, int, int]:
    """The rule as first written: isinstance checks on every value."""
    if not isinstance(usage, Mapping):
        return 0, 0, 0, 0
    chat = "prompt_tokens" in usage or "completion_tokens" in usage
    inp = usage.get("prompt_tokens" if chat else "input_tokens")
    out = usage.get("completion_tokens" if chat else "output_tokens")
    in_details = usage.get("prompt_tokens_details" if chat else "input_tokens_details")
    out_details = usage.get("completion_tokens_details" if chat else "output_tokens_details")
    return (
        _count(inp),
        _count(out),
        _count(in_details.get("cached_tokens")) if isinstance(in_details, Mapping) else 0,
        _count(out_details.get("reasoning_tokens")) if isinstance(out_details, Mapping) else 0,
    )


class Tokens(int):
    """An int subclass (an enum-like count): counted like an int."""


_values = (
    st.none()
    | st.integers(-5, 2**70)
    | st.booleans()
    | st.floats(allow_nan=False)
    | st.text(max_size=3)
    | st.integers(0, 100).map(Tokens)
)
_detail_values = st.none() | st.dictionaries(
    st.sampled_from(["cached_tokens", "reasoning_tokens", "other"]), _values, max_size=3
)
_names = st.sampled_from(
    [
        "prompt_tokens",
        "completion_tokens",
        "input_tokens",
        "output_tokens",
        "total_tokens",
    ]
)
_detail_names = st.sampled_from(
    [
        "prompt_tokens_details",
        "completion_tokens_details",
        "input_tokens_details",
        "output_tokens_details",
    ]
)
_usage = st.dictionaries(_names | _detail_names, _values | _detail_values)


def _proxy(value: Any) -> Any:
    return MappingProxyType(value) if isinstance(value, dict) else value


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        _usage,
        _usage.map(_proxy),  # a Mapping that is not a dict
        st.none(),
        st.lists(st.integers(), max_size=2),
        st.text(max_size=3),
    ),
    st.booleans(),
)
def test_fast_path_counts_what_the_rule_counts(usage: Any, proxied_details: bool) -> None:
    if proxied_details and isinstance(usage, dict):
        usage = {name: _proxy(value) for name, value in usage.items()}
    assert _token_counts(usage) == reference(usage)


def test_every_field_of_the_usual_record_comes_from_its_source() -> None:
    """Distinct values everywhere, so that two fields swapped in the positional call show."""
    spend = SpendControl(lambda *args: None, clock=lambda: 1_773_230_400.5)
    ctx = RequestContext(request_id="req_distinct")
    ctx.state["routing"] = {
        "attempts": [{"outcome": "ok"}],
        "metadata": {
            "provider": "prov",
            "provider_model_id": "prov-model-1",
            "ttft_ms": 12.5,
            "cost": {"usd": 0.25, "cache_savings_usd": 0.125},
        },
        "usage": {
            "prompt_tokens": 11,
            "completion_tokens": 22,
            "prompt_tokens_details": {"cached_tokens": 3},
            "completion_tokens_details": {"reasoning_tokens": 4},
        },
    }
    outcome = _Outcome()
    outcome.status, outcome.complete = 201, True
    record = spend._build_record(
        ctx,
        "chat_completions",
        {"model": "asked-model", "stream": True},
        Identity(key_id="key_x", workspace_id="ws_y"),
        outcome,
        True,
        ctx.started,
    )
    fields = {name: getattr(record, name) for name in RECORD_COLUMNS}
    assert fields.pop("duration_ms") >= 0
    assert fields == {
        "ts": 1_773_230_400.5,
        "request_id": "req_distinct",
        "key_id": "key_x",
        "workspace_id": "ws_y",
        "endpoint": "chat_completions",
        "model": "asked-model",
        "provider": "prov",
        "provider_model": "prov-model-1",
        "input_tokens": 11,
        "output_tokens": 22,
        "cached_tokens": 3,
        "reasoning_tokens": 4,
        "cost_usd": 0.25,
        "cache_savings_usd": 0.125,
        "ttft_ms": 12.5,
        "status": 201,
        "error_code": None,
        "stream": True,
        "client_disconnected": False,
        "estimated": False,
    }


_header_names = st.sampled_from(
    [b"content-type", b"Content-Type", b"CONTENT-TYPE", b"content-length", b"x-request-id"]
) | st.binary(max_size=14)


@given(st.lists(st.tuples(_header_names, st.binary(max_size=20)), max_size=6))
def test_the_content_type_is_found_as_the_general_loop_finds_it(
    headers: list[tuple[bytes, bytes]],
) -> None:
    """The spend layer's start without headers of its own reads the content type with
    _content_type: the last content-type header, its name in any case."""
    from akgate.usage._middleware import _content_type

    found = [value for name, value in headers if name.lower() == b"content-type"]
    assert _content_type(headers) == (found[-1] if found else b"")


class _CountingLedger(UsageLedger):
    """A ledger subclass whose append a user may have changed: it must still be called."""

    def __init__(self) -> None:
        super().__init__(MemoryLedgerBackend())
        self.appended: list[UsageRecord] = []

    def append(self, record: UsageRecord) -> None:
        self.appended.append(record)
        super().append(record)


def test_a_record_is_queued_as_append_would_queue_it() -> None:
    """The row the spend layer queues directly (a plain ledger, no hook) is what append queues
    for its record; a hook or a ledger subclass gets the record through append."""
    row = (1.5, "req_r", "key", "ws", "chat_completions", "m", "p", "pm", 1, 2, 3, 4)
    row += (0.5, 0.25, None, 7.5, 200, None, True, False, False)
    assert len(row) == len(RECORD_COLUMNS)
    plain = UsageLedger(MemoryLedgerBackend())
    SpendControl(lambda *args: None, ledger=plain)._append_row(row)
    reference = UsageLedger(MemoryLedgerBackend())
    reference.append(UsageRecord(*row))
    assert list(plain._pending) == list(reference._pending) == [row]
    hooked = UsageLedger(MemoryLedgerBackend())
    got: list[UsageRecord] = []
    hooked.on_record = got.append
    SpendControl(lambda *args: None, ledger=hooked)._append_row(row)
    assert got == [UsageRecord(*row)]
    assert list(hooked._pending) == [row]
    sub = _CountingLedger()
    SpendControl(lambda *args: None, ledger=sub)._append_row(row)
    assert sub.appended == [UsageRecord(*row)]
    for ledger in (plain, reference, hooked, sub):
        ledger.close()
