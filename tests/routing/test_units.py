"""Pure helpers: suffixes, effort normalisation, cost, percentiles, stats."""

from __future__ import annotations

from typing import Any

import pytest

from akgate.routing import Catalog, InMemoryStats, Provider, Routing
from akgate.routing._cost import TokenCounts, compute_cost, token_counts
from akgate.routing._stats import percentile
from akgate.routing._strategies import STRATEGY_WEIGHTS, normalize_effort, split_suffix

PRICED = Catalog.from_dict(
    {
        "models": {
            "m": {
                "providers": [
                    {
                        "name": "p",
                        "input_price": 2.0,
                        "output_price": 8.0,
                        "cached_input_price": 0.5,
                    }
                ]
            }
        }
    }
)
OFFER = PRICED.models[0].providers[0]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gpt-4o:cost", ("gpt-4o", "cost")),
        ("gpt-4o:tps-focus", ("gpt-4o", "tps-focus")),
        ("gpt-4o:balanced", ("gpt-4o", "balanced")),
        ("ft:gpt-4o:org:custom", ("ft:gpt-4o:org:custom", None)),
        ("llama3:8b", ("llama3:8b", None)),
        ("gpt-4o", ("gpt-4o", None)),
        (":cost", (":cost", None)),
    ],
)
def test_split_suffix(name: str, expected: tuple[str, str | None]) -> None:
    assert split_suffix(name) == expected


@pytest.mark.parametrize(
    ("effort", "accepted", "expected"),
    [
        ("high", ("low", "high"), "high"),
        ("max", ("low", "medium", "high"), "high"),
        ("xhigh", ("low", "medium", "high", "max"), "high"),
        ("minimal", ("low", "high"), "low"),
        ("medium", ("low", "high"), "low"),
        ("off", ("low", "high"), None),
        ("none", ("off", "low"), "off"),
    ],
)
def test_normalize_effort(effort: str, accepted: tuple[str, ...], expected: str | None) -> None:
    assert normalize_effort(effort, accepted) == expected


def test_cost_without_cache() -> None:
    assert compute_cost(TokenCounts(1_000_000, 1_000_000, 0), OFFER) == {"usd": 10.0}


def test_cost_with_cache_savings() -> None:
    cost = compute_cost(TokenCounts(1_000_000, 0, 500_000), OFFER)
    assert cost == {"usd": 1.25, "cache_savings_usd": 0.75, "cache_savings_percent": 38}


def test_cached_tokens_without_cached_price_have_no_savings() -> None:
    offer = (
        Catalog.from_dict(
            {
                "models": {
                    "m": {"providers": [{"name": "p", "input_price": 2.0, "output_price": 8.0}]}
                }
            }
        )
        .models[0]
        .providers[0]
    )
    assert compute_cost(TokenCounts(100, 0, 50), offer) == {"usd": 0.0002}


def test_token_counts_reads_both_usage_shapes() -> None:
    chat = {
        "prompt_tokens": 4,
        "completion_tokens": 2,
        "prompt_tokens_details": {"cached_tokens": 1},
    }
    responses = {
        "input_tokens": 4,
        "output_tokens": 2,
        "input_tokens_details": {"cached_tokens": 1},
    }
    assert token_counts(chat) == token_counts(responses) == TokenCounts(4, 2, 1)
    assert token_counts(None) is None


def test_percentile_nearest_rank() -> None:
    values = sorted(float(v) for v in range(1, 101))
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.95) == 95
    assert percentile([], 0.5) is None


def test_in_memory_stats_window() -> None:
    stats = InMemoryStats(window=3)
    for v in (1000, 10, 20, 30):
        stats.add("p", "m", ttft_ms=v, tps=v)
    perf = stats.get("p", "m")
    assert perf.samples == 3
    assert perf.ttft_p95 == 30


async def test_in_memory_snapshot_only_known_keys() -> None:
    stats = InMemoryStats()
    stats.add("p", "m", ttft_ms=5, tps=None)
    snap = await stats.snapshot([("p", "m"), ("q", "m")])
    assert set(snap) == {("p", "m")}
    assert snap[("p", "m")].tps_p50 is None


async def _bare(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError


def test_catalog_provider_must_be_configured() -> None:
    with pytest.raises(ValueError, match="not configured"):
        Routing(
            _bare,
            catalog={
                "models": {
                    "m": {"providers": [{"name": "ghost", "input_price": 1, "output_price": 1}]}
                }
            },
        )


def test_duplicate_provider_rejected() -> None:
    with pytest.raises(ValueError, match="twice"):
        Routing(_bare, catalog=PRICED, providers=[Provider("p", _bare), Provider("p", _bare)])


def test_bad_default_optimize_rejected() -> None:
    with pytest.raises(ValueError):
        Routing(_bare, catalog=PRICED, app_provider="p", default_optimize="fastest")


def test_wrapped_app_is_a_provider() -> None:
    routing = Routing(_bare, catalog=PRICED, app_provider="p")
    assert routing.providers["p"].app is _bare


def test_provider_rejects_bad_endpoints() -> None:
    with pytest.raises(ValueError):
        Provider("p", _bare, endpoints=frozenset({"batch"}))  # type: ignore[arg-type]


def test_suffixes_are_exactly_the_named_strategies() -> None:
    from akgate.schemas.gateway import MODEL_SUFFIXES

    assert set(STRATEGY_WEIGHTS) == MODEL_SUFFIXES
