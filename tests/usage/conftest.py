"""Helpers for the spend tests: the full stack over the demo model with an injected clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from akgate import Catalog, DemoModel, gateway
from akgate.auth import MemoryKeyStore, NewKey, new_key_record
from akgate.usage import (
    Limits,
    MemoryLedgerBackend,
    MemoryLimitStore,
    MemorySpendCounters,
    SpendCounters,
    UsageLedger,
)

#: 2026-03-11 12:00:00 UTC, a Wednesday: mid-day, mid-week, mid-month.
NOON = 1_773_230_400.0
#: One demo answer to CHAT: 5 input tokens x $0.5/M + 15 output tokens x $1.5/M.
CHAT_COST = 0.000025
CHAT = {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AKGATE_HOME", str(tmp_path))
    monkeypatch.delenv("AKGATE_API_KEYS", raising=False)


class Clock:
    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Stack:
    """The gateway over the demo model with a spend layer, its ledger and its clock."""

    def __init__(
        self,
        key_limits: Limits | None = None,
        workspace_limits: Limits | None = None,
        *,
        counters: Callable[[Clock], SpendCounters] | None = None,
        token_delay: float = 0.0,
        workspace: str = "ws1",
        wrap_limits: Callable[[MemoryLimitStore], Any] | None = None,
    ) -> None:
        self.clock = Clock()
        self.key: NewKey = new_key_record(name="t", workspace_id=workspace)
        self.backend = MemoryLedgerBackend()
        self.ledger = UsageLedger(self.backend)
        self.limits = MemoryLimitStore(
            keys={self.key.key_id: key_limits} if key_limits else None,
            workspaces={workspace: workspace_limits} if workspace_limits else None,
        )
        self.counters = counters(self.clock) if counters else MemorySpendCounters(clock=self.clock)
        self.app = gateway(
            DemoModel(token_delay=token_delay),
            keys=MemoryKeyStore([self.key.record]),
            catalog=Catalog.demo(),
            app_provider="demo",
            spend_options={
                "ledger": self.ledger,
                "limits": wrap_limits(self.limits) if wrap_limits else self.limits,
                "counters": self.counters,
                "clock": self.clock,
            },
        )

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://test",
            headers={"authorization": f"Bearer {self.key.key}"},
        )

    def records(self) -> list[Any]:
        self.ledger.flush_sync()
        return list(self.backend.records)


@pytest.fixture
def make_stack() -> Iterator[Callable[..., Stack]]:
    stacks: list[Stack] = []

    def make(*args: Any, **kwargs: Any) -> Stack:
        stack = Stack(*args, **kwargs)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.ledger.close()
