"""The metrics layer binds what every answer records once per label set: a repeated answer
records through the bound children, with the values prometheus-client's own calls give."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akgate.ops import PrometheusMetrics
from akgate.ops._metrics import metric_fields

from .test_access_writer import observation, requests, routing


@dataclass
class _Finished:
    """The fields of a finished ``Observation`` that the metrics read."""

    endpoint: str = "chat_completions"
    model: str = "m"
    provider: str = "upstream"
    status: int = 200
    duration: float = 0.002
    ttft: float | None = None
    tokens: tuple[int, int] | None = (10, 20)
    cost: float | None = 0.5
    error_code: str | None = None
    requested_model: str | None = None
    #: The observation's cache of answered() (None: not finished, nothing cached).
    _answered: Any = None
    _routing: Any = None

    @property
    def metadata(self) -> dict[str, Any]:
        cost = {"usd": self.cost} if self.cost is not None else None
        return {"model_canonical": self.model, "provider": self.provider, "cost": cost}

    @property
    def routing(self) -> dict[str, Any]:
        return {"metadata": self.metadata, "tokens": self.tokens, "attempts": [{}]}


def test_a_repeated_answer_records_without_a_label_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metrics = PrometheusMetrics(None, path=None)  # type: ignore[arg-type]
    metrics._record(_Finished())  # type: ignore[arg-type]
    looked_up: list[tuple[Any, ...]] = []
    real = metrics._child

    def child(metric: Any, *labels: str) -> Any:
        looked_up.append(labels)
        return real(metric, *labels)

    monkeypatch.setattr(metrics, "_child", child)
    metrics._record(_Finished(duration=0.02))  # type: ignore[arg-type]
    metrics._record(_Finished(status=404, tokens=(1, 2)))  # type: ignore[arg-type]
    # Only the new status was looked up.
    assert ("m", "upstream") not in looked_up
    assert ("chat_completions", "m", "upstream", "200") not in looked_up
    assert ("chat_completions", "m", "upstream", "404") in looked_up
    assert ("m", "upstream", "input") not in looked_up
    sample = metrics.registry.get_sample_value
    answer = {"endpoint": "chat_completions", "model": "m", "provider": "upstream"}
    assert sample("akgate_requests_total", {**answer, "status": "200"}) == 2
    assert sample("akgate_requests_total", {**answer, "status": "404"}) == 1
    assert sample("akgate_request_duration_seconds_count", answer) == 3
    assert sample("akgate_request_duration_seconds_sum", answer) == pytest.approx(0.024)
    assert sample("akgate_request_duration_seconds_bucket", {**answer, "le": "0.005"}) == 2
    usage = {"model": "m", "provider": "upstream"}
    assert sample("akgate_tokens_total", {**usage, "direction": "input"}) == 21
    assert sample("akgate_tokens_total", {**usage, "direction": "output"}) == 42
    assert sample("akgate_cost_usd_total", usage) == 1.5
    # A series appears only once something was recorded in it (no first-byte time here).
    assert sample("akgate_time_to_first_token_seconds_count", answer) is None


@settings(max_examples=300)
@given(data=requests, recorded=routing, costs=st.none() | st.integers(-2, 10) | st.floats())
def test_the_metric_fields_are_the_observations_properties(
    data: dict[str, Any], recorded: dict[str, Any], costs: Any
) -> None:
    """metric_fields reads what routing recorded once: the same values as the Observation's
    properties, which the metrics read one by one before."""
    if data["routing"] is not None and not isinstance(data["routing"], str):
        data["routing"] = recorded  # what routing records, most of the time
        if isinstance(recorded.get("metadata"), dict) and costs is not None:
            recorded["metadata"]["cost"] = {"usd": costs}
    obs = observation(data)
    assert metric_fields(obs) == (
        obs.endpoint,
        (obs.model if obs.metadata else "-") or "-",
        obs.provider or "-",
        obs.tokens,
        obs.cost,
        obs.fallbacks,
    )


_amounts = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, 0.005, 0.01, 0.0050000001, 120.0, 300.0, 301.0, -1.0, float("inf")]
)


@settings(max_examples=200)
@given(durations=st.lists(_amounts, max_size=8), counts=st.lists(st.integers(0, 10**6), max_size=4))
def test_the_bound_recorders_record_what_prometheus_client_records(
    durations: list[float], counts: list[int]
) -> None:
    """_observer and _adder against the children's own observe and inc: the same samples."""
    from prometheus_client import CollectorRegistry, Counter, Histogram

    from akgate.ops._metrics import LATENCY_BUCKETS, _adder, _observer

    found = []
    for bound in (True, False):
        registry = CollectorRegistry()
        histogram = Histogram("d", "d", ("a",), buckets=LATENCY_BUCKETS, registry=registry)
        counter = Counter("c", "c", ("a",), registry=registry)
        observe = _observer(histogram.labels("x")) if bound else histogram.labels("x").observe
        add = _adder(counter.labels("x")) if bound else counter.labels("x").inc
        for duration in durations:
            observe(duration)
        for count in counts:
            add(count)
        found.append(
            [
                (s.name, s.labels, repr(s.value))
                for family in registry.collect()
                for s in family.samples
                if not s.name.endswith("_created")
            ]
        )
    assert found[0] == found[1]


def test_recorders_of_a_changed_metric_class_are_its_own_methods() -> None:
    from prometheus_client import CollectorRegistry, Counter, Histogram

    from akgate.ops._metrics import _adder, _observer

    class Loud(Counter):
        def inc(self, amount: float = 1, exemplar: Any = None) -> None:
            super().inc(amount * 2)

    class Slow(Histogram):
        def observe(self, amount: float, exemplar: Any = None) -> None:
            super().observe(amount)

    registry = CollectorRegistry()
    loud = Loud("l", "l", ("a",), registry=registry).labels("x")
    slow = Slow("s", "s", ("a",), registry=registry).labels("x")
    assert _adder(loud) == loud.inc
    assert _observer(slow) == slow.observe
    assert _adder(Counter("c", "c", ("a",), registry=registry).labels("x")) != loud.inc
