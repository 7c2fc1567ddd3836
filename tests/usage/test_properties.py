"""Property tests: the overshoot bound under any interleaving of admissions and settlements,
and the period windows."""

from __future__ import annotations

import anyio
from hypothesis import given
from hypothesis import strategies as st

from akgate.usage import MemorySpendCounters, Slot
from akgate.usage._periods import period_window

LIMIT = 1_000

# A schedule: each step admits a new request (its estimate, and its real cost as a fraction of
# the estimate, possibly above 1) or settles the in-flight request at the given index.
steps = st.lists(
    st.one_of(
        st.tuples(st.just("admit"), st.integers(1, 400), st.floats(0, 1.5, allow_nan=False)),
        st.tuples(st.just("settle"), st.integers(0, 50), st.just(0.0)),
    ),
    max_size=120,
)


@given(steps)
def test_spend_stays_within_the_documented_bound(schedule: list[tuple[str, int, float]]) -> None:
    async def run() -> None:
        counters = MemorySpendCounters(clock=lambda: 0.0)
        in_flight: list[tuple[Slot, int]] = []
        admitted: list[tuple[int, int]] = []  # (estimate, cost)

        async def settle(index: int) -> None:
            slot, cost = in_flight.pop(index % len(in_flight))
            await counters.settle([slot], [cost])

        for kind, value, ratio in schedule:
            if kind == "admit":
                slot = Slot("b", LIMIT, True, 1e9, value)
                admission = await counters.reserve([slot])
                spent, reserved = admission.used[0]
                assert (admission.blocked == -1) == (spent + reserved < LIMIT)
                if admission.blocked == -1:
                    cost = round(value * ratio)
                    in_flight.append((slot, cost))
                    admitted.append((value, cost))
            elif in_flight:
                await settle(value)
        while in_flight:
            await settle(0)
        ((spent, reserved),) = await counters.read(["b"])
        assert reserved == 0
        assert spent == sum(cost for _, cost in admitted)
        # spend <= limit + max estimate + the excess of requests over their estimates.
        excess = sum(max(0, cost - estimate) for estimate, cost in admitted)
        largest = max((estimate for estimate, _ in admitted), default=0)
        assert spent <= LIMIT + largest + excess

    anyio.run(run)


@given(
    st.floats(0, 4_102_444_800, allow_nan=False), st.sampled_from(["daily", "weekly", "monthly"])
)
def test_a_period_contains_its_instant_and_ends_where_the_next_begins(
    now: float, period: str
) -> None:
    window = period_window(period, now)  # type: ignore[arg-type]
    assert window.start <= now < window.reset
    following = period_window(period, window.reset)  # type: ignore[arg-type]
    assert following.start == window.reset
    assert following.label != window.label
    assert 86_400 <= window.reset - window.start <= 31 * 86_400


@given(
    st.binary(max_size=300)
    | st.lists(
        st.sampled_from(
            [b'"content":"', b'"delta":"', b'"text":"', b'\\"', b"\\\\", b'"', b"a", b"\\", b"\n"]
        )
    ).map(b"".join)
)
def test_the_stream_tally_counts_what_the_plain_json_string_pattern_counts(chunk: bytes) -> None:
    """The unrolled pattern of ``StreamTally`` is the plain one, only cheaper."""
    import re

    from akgate.usage._estimate import StreamTally

    plain = rb'((?:[^"\\]|\\.)*)"'
    fields = {
        "chat": rb'"(?:content|reasoning_content|reasoning|arguments)":"',
        "responses": rb'"delta":"',
        "messages": rb'"(?:text|thinking|partial_json)":"',
    }
    for endpoint, field in fields.items():
        tally = StreamTally(endpoint)
        tally.feed(chunk)
        expected = sum(len(m.group(1)) for m in re.finditer(field + plain, chunk))
        assert tally.chars == expected
