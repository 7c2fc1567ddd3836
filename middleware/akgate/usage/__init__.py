"""Spend: the usage ledger, budgets, token limits and the ``SpendControl`` layer."""

from __future__ import annotations

from ._counters import (
    Admission,
    MemorySpendCounters,
    RedisSpendCounters,
    Slot,
    SpendCounters,
)
from ._ledger import GroupBy, LedgerBackend, MemoryLedgerBackend, UsageLedger
from ._limits import Budget, Limits, LimitScope, LimitStore, MemoryLimitStore
from ._middleware import SpendControl, format_usd
from ._open import open_usage_store
from ._periods import PERIODS, Period, period_window
from ._postgres import PostgresUsageStore
from ._record import UsageRecord
from ._sqlite import SCHEMA_VERSION, SQLiteUsageStore, default_usage_path
from ._sqlstore import SQLUsageStore, UsageStoreError

__all__ = [
    "PERIODS",
    "SCHEMA_VERSION",
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
    "default_usage_path",
    "format_usd",
    "open_usage_store",
    "period_window",
]
