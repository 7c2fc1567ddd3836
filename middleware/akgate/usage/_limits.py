"""Spend limits: USD budgets per period and tokens per minute, for a key or a workspace."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol, runtime_checkable

from ._periods import PERIODS, Period

__all__ = ["Budget", "LimitScope", "LimitStore", "Limits", "MemoryLimitStore"]

LimitScope = Literal["api_key", "workspace"]
LIMIT_SCOPES: Final[tuple[LimitScope, ...]] = ("api_key", "workspace")


@dataclass(frozen=True, slots=True)
class Budget:
    """A USD limit for one period; ``enforce=False`` serves past it and only flags it."""

    limit_usd: float
    enforce: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.limit_usd) and self.limit_usd >= 0):
            raise ValueError("a budget limit must be a finite USD amount >= 0")


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits of one key or workspace: budgets by period, and a tokens-per-minute cap."""

    budgets: Mapping[Period, Budget] = field(default_factory=dict)
    #: Tokens per minute (input + output), keys only; None: no token limit.
    tpm: int | None = None

    def __post_init__(self) -> None:
        for period in self.budgets:
            if period not in PERIODS:
                raise ValueError(f"unknown budget period {period!r} (daily, weekly, monthly)")
        if self.tpm is not None and self.tpm < 1:
            raise ValueError("tpm must be >= 1 (None: no token limit)")

    @property
    def empty(self) -> bool:
        return not self.budgets and self.tpm is None

    @classmethod
    def of(
        cls,
        *,
        daily: float | None = None,
        weekly: float | None = None,
        monthly: float | None = None,
        enforce: bool = True,
        tpm: int | None = None,
    ) -> Limits:
        """``Limits.of(daily=5.0, monthly=100.0, enforce=False, tpm=20_000)``."""
        budgets: dict[Period, Budget] = {}
        for period, usd in (("daily", daily), ("weekly", weekly), ("monthly", monthly)):
            if usd is not None:
                budgets[period] = Budget(float(usd), enforce)  # type: ignore[index]
        return cls(budgets, tpm)


@runtime_checkable
class LimitStore(Protocol):
    """Where limits live; the spend layer reads them per request (stores cache them)."""

    async def get_limits(self, scope: LimitScope, scope_id: str) -> Limits | None: ...

    async def set_limits(self, scope: LimitScope, scope_id: str, limits: Limits) -> None: ...


class MemoryLimitStore:
    """Limits held in dicts: ``MemoryLimitStore(keys={key_id: Limits}, workspaces={...})``."""

    def __init__(
        self,
        *,
        keys: Mapping[str, Limits] | None = None,
        workspaces: Mapping[str, Limits] | None = None,
    ) -> None:
        self._limits: dict[tuple[str, str], Limits] = {}
        for key_id, limits in (keys or {}).items():
            self._limits["api_key", key_id] = limits
        for workspace_id, limits in (workspaces or {}).items():
            self._limits["workspace", workspace_id] = limits

    def __repr__(self) -> str:
        return f"MemoryLimitStore({len(self._limits)} entries)"

    async def get_limits(self, scope: LimitScope, scope_id: str) -> Limits | None:
        return self._limits.get((scope, scope_id))

    def peek_limits(self, scope: LimitScope, scope_id: str) -> tuple[bool, Limits | None]:
        """Always a hit (see :meth:`SQLUsageStore.peek_limits`)."""
        return True, self._limits.get((scope, scope_id))

    async def set_limits(self, scope: LimitScope, scope_id: str, limits: Limits) -> None:
        if scope not in LIMIT_SCOPES:
            raise ValueError(f"unknown limit scope {scope!r}")
        self._limits[scope, scope_id] = limits
