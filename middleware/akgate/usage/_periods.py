"""Budget periods in UTC: the day, the ISO week (Monday 00:00) and the calendar month."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Final, Literal, NamedTuple

__all__ = ["PERIODS", "Period", "PeriodWindow", "period_window"]

Period = Literal["daily", "weekly", "monthly"]
PERIODS: Final[tuple[Period, ...]] = ("daily", "weekly", "monthly")


class PeriodWindow(NamedTuple):
    """One period: a short label for counter names, and its bounds in epoch seconds."""

    label: str
    start: float
    reset: float


def period_window(period: Period, now: float) -> PeriodWindow:
    """The ``period`` that contains ``now`` (epoch seconds)."""
    return _window(period, int(now // 86400))


@lru_cache(maxsize=64)
def _window(period: Period, day_index: int) -> PeriodWindow:
    # Computed once per period and UTC day: datetime arithmetic costs microseconds.
    day = datetime.fromtimestamp(day_index * 86400, timezone.utc)
    if period == "daily":
        start, end = day, day + timedelta(days=1)
        label = start.strftime("d%Y%m%d")
    elif period == "weekly":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
        label = start.strftime("w%Y%m%d")
    elif period == "monthly":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        label = start.strftime("m%Y%m")
    else:
        raise ValueError(f"unknown budget period {period!r}")
    return PeriodWindow(label, start.timestamp(), end.timestamp())
