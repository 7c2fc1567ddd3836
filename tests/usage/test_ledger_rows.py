"""The ledger's writer hands a SQL store its queued tuples as rows (no record built per row),
with the same rows, the same retries and the same failure counts as the records' path."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import akgate.usage._ledger as ledger_module
from akgate.usage import SQLiteUsageStore, UsageLedger, UsageRecord
from akgate.usage._sqlstore import _record_row


def _record(i: int, **changes: Any) -> UsageRecord:
    record = UsageRecord(
        ts=1_700_000_000.0 + i,
        request_id=f"req_{i}",
        key_id="key_a",
        workspace_id="ws",
        endpoint="chat_completions",
        model="demo",
        provider="demo",
        provider_model="demo-1",
        input_tokens=i,
        output_tokens=2 * i,
        cost_usd=0.001 * i,
        ttft_ms=None if i % 2 else 1.5,
        duration_ms=3.0,
        error_code=None if i % 3 else "upstream_error",
        stream=bool(i % 2),
        client_disconnected=bool(i % 5 == 0),
        estimated=bool(i % 7 == 0),
    )
    for name, value in changes.items():
        setattr(record, name, value)
    return record


def _no_records_built(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any) -> UsageRecord:
        raise AssertionError("the writer built a record for a SQL store")

    monkeypatch.setattr(ledger_module, "UsageRecord", refuse)


def test_sql_store_gets_the_queued_rows_without_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteUsageStore(tmp_path / "usage.sqlite3")
    ledger = UsageLedger(store, batch_size=7, flush_interval=0)
    records = [_record(i) for i in range(30)]
    _no_records_built(monkeypatch)
    for record in records:
        ledger.append(record)
    assert ledger.flush_sync()
    monkeypatch.undo()
    assert store.records() == records
    ledger.close()


class _FailingOnce(SQLiteUsageStore):
    """Its transactions fail ``failures`` times (a locked or unreachable store), then work."""

    def __init__(self, path: Path, failures: int) -> None:
        super().__init__(path)
        self.failures = failures

    def _transaction(self, conn: Any, work: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("database is locked")
        return super()._transaction(conn, work)


def test_rows_that_fail_are_retried_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = _FailingOnce(tmp_path / "usage.sqlite3", failures=2)
    ledger = UsageLedger(store, batch_size=10, flush_interval=0)
    _no_records_built(monkeypatch)
    records = [_record(i) for i in range(25)]
    for record in records:
        ledger.append(record)
    flushed = [ledger.flush_sync() for _ in range(3)]
    monkeypatch.undo()
    assert flushed[-1]  # written once the store came back
    assert ledger.failed_writes >= 2
    assert "will retry" in caplog.text
    assert store.records() == records  # in order, none lost, none twice
    ledger.close()


class _OwnWrite(SQLiteUsageStore):
    """A store whose ``write`` does more than insert: it must still get every batch."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batches: list[list[UsageRecord]] = []

    def write(self, records: Sequence[UsageRecord]) -> None:
        self.batches.append(list(records))
        super().write(records)


def test_an_overridden_write_still_gets_records(tmp_path: Path) -> None:
    store = _OwnWrite(tmp_path / "usage.sqlite3")
    ledger = UsageLedger(store, batch_size=4, flush_interval=0)
    records = [_record(i) for i in range(9)]
    for record in records:
        ledger.append(record)
    ledger.close()
    assert [r for batch in store.batches for r in batch] == records
    assert store.records() == records


def test_a_patched_write_still_gets_records(tmp_path: Path) -> None:
    store = SQLiteUsageStore(tmp_path / "usage.sqlite3")
    seen: list[UsageRecord] = []
    store.write = seen.extend  # type: ignore[method-assign]
    ledger = UsageLedger(store, flush_interval=0)
    ledger.append(_record(1))
    ledger.close()
    assert seen == [_record(1)]


_text = st.text(max_size=12)
_optional_text = st.none() | _text
_floats = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.builds(
            UsageRecord,
            ts=st.floats(min_value=0, max_value=4e9),
            request_id=_text,
            key_id=_text,
            workspace_id=_text,
            endpoint=_text,
            model=_text,
            provider=_optional_text,
            provider_model=_optional_text,
            input_tokens=st.integers(0, 2**40),
            output_tokens=st.integers(0, 2**40),
            cost_usd=_floats,
            ttft_ms=st.none() | _floats,
            status=st.integers(100, 599),
            error_code=_optional_text,
            stream=st.booleans(),
            client_disconnected=st.booleans(),
            estimated=st.booleans(),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_rows_path_stores_what_the_records_path_stores(records: list[UsageRecord]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        fast = SQLiteUsageStore(Path(tmp) / "fast.sqlite3")
        slow = SQLiteUsageStore(Path(tmp) / "slow.sqlite3")
        ledger = UsageLedger(fast, flush_interval=0)
        for record in records:
            ledger.append(record)
        ledger.close()
        slow.write(records)  # the records' path: UsageRecord -> row
        assert fast.records() == slow.records() == records
        assert [_record_row(r) for r in fast.records()] == [_record_row(r) for r in records]
        slow.close()


def test_a_replaced_backend_gets_the_next_batches(tmp_path: Path) -> None:
    first = SQLiteUsageStore(tmp_path / "first.sqlite3")
    ledger = UsageLedger(first, flush_interval=0)
    ledger.append(_record(1))
    assert ledger.flush_sync()
    second = SQLiteUsageStore(tmp_path / "second.sqlite3")
    ledger.backend = second
    ledger.append(_record(2))
    assert ledger.flush_sync()
    assert first.records() == [_record(1)]
    assert second.records() == [_record(2)]
    ledger.close()
    first.close()
