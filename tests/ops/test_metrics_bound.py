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
