"""The metrics layer binds what every answer records once per label set: a repeated answer
records through the bound children, with the values prometheus-client's own calls give."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from akgate.ops import PrometheusMetrics


@dataclass
class _Finished:
    """The fields of a finished ``Observation`` that the metrics read."""

    endpoint: str = "chat_completions"
    model: str | None = "m"
    metadata: Any = True
    provider: str | None = "upstream"
    status: int = 200
    duration: float = 0.002
    ttft: float | None = None
    tokens: tuple[int, int] | None = (10, 20)
    cost: float | None = 0.5
    fallbacks: int = 0
    error_code: str | None = None


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
    # Only the cost (once per answer with a cost) and the new status were looked up.
    assert ("m", "upstream") in looked_up
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
