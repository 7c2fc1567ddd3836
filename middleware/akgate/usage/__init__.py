"""Spend: the usage ledger, budgets, token limits and the ``SpendControl`` layer."""

from __future__ import annotations

from akgate._deprecated import deprecated_names as _deprecated_names

from ._counters import (
    Admission,
    MemorySpendCounters,
    RedisSpendCounters,
    Slot,
    SpendCounters,
)
from ._ledger import GroupBy, LedgerBackend, MemoryLedgerBackend, UsageLedger
from ._limits import Budget, Limits, LimitScope, LimitStore, MemoryLimitStore
from ._middleware import SpendControl
from ._open import open_usage_store
from ._periods import Period
from ._postgres import PostgresUsageStore
from ._record import UsageRecord
from ._sqlite import SQLiteUsageStore
from ._sqlstore import SQLUsageStore, UsageStoreError

__all__ = [
    "Admission",
    "Budget",
    "GroupBy",
    "LedgerBackend",
    "LimitScope",
    "LimitStore",
    "Limits",
    "MemoryLedgerBackend",
    "MemoryLimitStore",
    "MemorySpendCounters",
    "Period",
    "PostgresUsageStore",
    "RedisSpendCounters",
    "SQLUsageStore",
    "SQLiteUsageStore",
    "Slot",
    "SpendControl",
    "SpendCounters",
    "UsageLedger",
    "UsageRecord",
    "UsageStoreError",
    "open_usage_store",
]


# Internals that were listed here before: still importable from this package, with a warning.
# SQLUsageStore stays public: open_usage_store returns it, the base of both SQL stores.
__getattr__ = _deprecated_names(
    __name__,
    instead="it is internal to akgate.usage",
    moved={
        "PERIODS": ("._periods", "the periods are the values of akgate.usage.Period"),
        "SCHEMA_VERSION": "._sqlite",
        "default_usage_path": ("._sqlite", "SQLiteUsageStore() without a path uses it"),
        "format_usd": "._middleware",
        "period_window": "._periods",
    },
)
