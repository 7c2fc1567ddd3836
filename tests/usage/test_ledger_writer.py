"""The ledger's writer gives the event loop its GIL back: a batch is a few statements (one for a
usual batch, not one per row), the rows are exactly those ``executemany`` wrote, and the writer
wakes once per ``flush_interval`` under load, not once per batch of a few records."""

from __future__ import annotations

import math
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import akgate.usage._sqlite as sqlite_module
from akgate.usage import (
    MemoryLedgerBackend,
    SQLiteUsageStore,
    UsageLedger,
    UsageRecord,
    UsageStoreError,
)
from akgate.usage._record import RECORD_COLUMNS
from akgate.usage._sqlite import insert_statements, rows_per_statement, statement_shapes
from akgate.usage._sqlstore import _record_row

#: What the store ran before: one INSERT per row (``executemany``) in BEGIN/COMMIT.
ROW_INSERT = (
    f"INSERT INTO usage_records ({', '.join(RECORD_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(RECORD_COLUMNS))})"
)


def _record(i: int) -> UsageRecord:
    return UsageRecord(
        ts=1_773_230_400.0 + i / 7,
        request_id=f"req_{i}",
        key_id="key_a",
        workspace_id="ws",
        endpoint="chat_completions",
        model="demo",
        provider="demo",
        input_tokens=i,
        output_tokens=2 * i,
        cost_usd=0.000025 * i,
        ttft_ms=None if i % 2 else 1.5,
        error_code=None if i % 3 else "upstream_error",
        stream=bool(i % 2),
    )


@contextmanager
def traced(store: SQLiteUsageStore) -> Iterator[list[str]]:
    """Every statement the store's connection runs meanwhile (SQLite's trace callback is
    called once per statement execution: once per row under ``executemany``)."""
    statements: list[str] = []
    store._locked(lambda conn: conn.set_trace_callback(statements.append))
    try:
        yield statements
    finally:
        store._locked(lambda conn: conn.set_trace_callback(None))


def _kinds(statements: Sequence[str]) -> list[str]:
    return [sql.split(None, 1)[0].upper() for sql in statements]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteUsageStore]:
    store = SQLiteUsageStore(tmp_path / "usage.sqlite3")
    yield store
    store.close()


# -- statements per batch -------------------------------------------------------------------------


def test_a_usual_batch_is_one_statement_without_begin_or_commit(store: SQLiteUsageStore) -> None:
    records = [_record(i) for i in range(700)]
    with traced(store) as statements:
        store.write(records)
    # An autocommit connection runs one statement as its own transaction.
    assert _kinds(statements) == ["INSERT"]
    assert store.records() == records


def test_a_batch_past_the_statement_size_is_one_transaction_of_a_few_statements(
    store: SQLiteUsageStore,
) -> None:
    most = store._locked(rows_per_statement)
    records = [_record(i) for i in range(2 * most + 3)]
    with traced(store) as statements:
        store.write(records)
    assert _kinds(statements) == ["BEGIN", "INSERT", "INSERT", "INSERT", "COMMIT"]
    assert store.records() == records


def test_the_ledger_writes_thousands_of_records_with_a_handful_of_statements(
    store: SQLiteUsageStore,
) -> None:
    ledger = UsageLedger(store, flush_interval=0.5)
    records = [_record(i) for i in range(3000)]
    with traced(store) as statements:
        for record in records:
            ledger.append(record)
        deadline = time.monotonic() + 10
        while ledger.pending and time.monotonic() < deadline:
            time.sleep(0.05)
        ledger.close()
    # One INSERT (or BEGIN, 2 INSERTs, COMMIT where SQLite allows 32,766 parameters).
    assert len(statements) <= 4
    reopened = SQLiteUsageStore(store.path)
    assert reopened.records() == records
    reopened.close()


def test_statement_sizes_follow_the_connection_limit(store: SQLiteUsageStore) -> None:
    conn = store._locked(lambda conn: conn)
    if not hasattr(conn, "getlimit"):  # Python 3.10: the fallback, 999 parameters
        assert rows_per_statement(conn) == 999 // len(RECORD_COLUMNS)
        return
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    try:
        # 4 rows of 21 columns, and the row count: 85 parameters, one too many.
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 4 * len(RECORD_COLUMNS))
        assert rows_per_statement(conn) == 3
        records = [_record(i) for i in range(11)]
        with traced(store) as statements:
            store.write(records)  # 3 + 3 + 3 + 2 (padded to 3)
        assert _kinds(statements) == ["BEGIN", "INSERT", "INSERT", "INSERT", "INSERT", "COMMIT"]
        assert store.records() == records
    finally:
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
    assert rows_per_statement(conn) == min(4096, (limit - 1) // len(RECORD_COLUMNS))
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    try:
        assert rows_per_statement(conn) == 47  # SQLite's default before 3.32
    finally:
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)


def test_a_few_statement_shapes_cover_every_batch_size() -> None:
    assert statement_shapes(1024) == (1, 4, 16, 64, 256, 1024)
    assert statement_shapes(47) == (1, 4, 16, 47)
    assert statement_shapes(1) == (1,)
    texts = set()
    for n in range(1, 150):
        for sql, params in insert_statements([_record_row(_record(0))] * n, 47):
            texts.add(sql)
            assert params[-1] <= 47  # the rows that are real; the padding is never read
    assert len(texts) == 4


# -- the same rows as executemany -----------------------------------------------------------------


def _stored(path: Path) -> list[tuple[Any, ...]]:
    """Every row with the storage class of each value; floats to the bit."""
    typed = ", ".join(f"{c}, typeof({c})" for c in RECORD_COLUMNS)
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(f"SELECT id, {typed} FROM usage_records ORDER BY id").fetchall()
    finally:
        conn.close()
    return [tuple(v.hex() if isinstance(v, float) else v for v in row) for row in rows]


def _write_like_before(path: Path, rows: Sequence[tuple[Any, ...]]) -> None:
    store = SQLiteUsageStore(path)
    try:
        store._locked(
            lambda conn: store._transaction(conn, lambda c: c.executemany(ROW_INSERT, rows))
        )
    finally:
        store.close()


_any_text = st.text(st.characters(codec="utf-8"), max_size=8)
_ints = st.integers(-(2**63), 2**63 - 1) | st.integers(0, 2**40) | st.sampled_from([True, False])
_floats = st.floats() | st.floats(allow_nan=False, allow_infinity=False, width=32)
_field_values = {
    "ts": _floats,
    "request_id": _any_text,
    "key_id": _any_text,
    "workspace_id": st.just("ws") | _any_text,
    "endpoint": st.sampled_from(["chat_completions", "responses", "messages"]),
    "model": _any_text,
    "provider": st.none() | _any_text | st.booleans(),
    "provider_model": st.none() | _any_text,
    "input_tokens": _ints,
    "output_tokens": _ints,
    "cached_tokens": _ints,
    "reasoning_tokens": _ints,
    "cost_usd": _floats,
    "cache_savings_usd": _floats,
    "ttft_ms": st.none() | _floats,
    "duration_ms": _floats,
    "status": st.integers(100, 599),
    "error_code": st.none() | _any_text,
    # The writer binds booleans as 1/0 and None as NaN (SQLite's NULL) in some columns: any
    # column may hold any of them.
    "stream": st.booleans() | _ints | st.none(),
    "client_disconnected": st.booleans(),
    "estimated": st.booleans() | _any_text | _floats,
}
_records = st.builds(UsageRecord, **_field_values)


@settings(max_examples=30, deadline=None)
@given(st.lists(_records, min_size=1, max_size=14), st.sampled_from([3, 5, 1024]))
def test_rows_are_exactly_what_executemany_wrote(records: list[UsageRecord], most: int) -> None:
    """Any field values (None, unicode, NUL, big and negative ints, booleans, floats to the last
    bit, inf, NaN): the same rows and storage classes, in order, or the same refusal (NaN in a
    NOT NULL column). ``most`` rows per statement: batches split and padded as big ones are."""
    rows = [_record_row(r) for r in records]
    with (
        tempfile.TemporaryDirectory() as tmp,
        mock.patch.object(sqlite_module, "_MAX_ROWS_PER_STATEMENT", most),
    ):
        before, after = Path(tmp) / "before.sqlite3", Path(tmp) / "after.sqlite3"
        try:
            _write_like_before(before, rows)
        except UsageStoreError as exc:
            cause = exc.__cause__
            expected_error = True
        else:
            cause, expected_error = None, False
        assert cause is None or isinstance(cause, sqlite3.IntegrityError)
        store = SQLiteUsageStore(after)
        ledger = UsageLedger(store, flush_interval=60)
        for record in records:
            ledger.append(record)
        assert ledger.flush_sync() is not expected_error
        if expected_error:
            assert ledger.failed_writes == 1
            assert ledger.pending == len(records)  # kept for the retry, none half-written
            ledger.backend = MemoryLedgerBackend()  # let close() end
        ledger.close()
        store.close()
        assert _stored(after) == _stored(before)


def test_a_nan_cost_is_refused_like_before(store: SQLiteUsageStore) -> None:
    record = _record(1)
    record.cost_usd = math.nan  # SQLite stores NaN as NULL: cost_usd is NOT NULL
    with pytest.raises(UsageStoreError, match="IntegrityError"):
        store.write([_record(0), record])
    assert store.records() == []  # all or none


# -- when the writer wakes ------------------------------------------------------------------------


class SlowBackend(MemoryLedgerBackend):
    """A store that takes ``delay`` seconds per write, with the size of each batch."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.batches: list[int] = []

    def write(self, records: Sequence[UsageRecord]) -> None:
        self.batches.append(len(records))
        time.sleep(self.delay)
        super().write(records)


def test_under_steady_load_the_writer_writes_once_per_flush_interval() -> None:
    """Records keep arriving while a (slow) write is in progress: they wait for the next
    round instead of being written at once, a few at a time, in a loop."""
    backend = SlowBackend(delay=0.05)
    ledger = UsageLedger(backend, flush_interval=0.3)
    appended = 0
    start = time.monotonic()
    while time.monotonic() - start < 1.2:
        ledger.append(_record(appended))
        appended += 1
        time.sleep(0.002)
    written = list(backend.batches)
    ledger.close()
    # 1.2 s at one write per 0.3 s (+ the write's own 0.05 s): 3 or 4 writes, not one per
    # 0.05 s write (about 20).
    assert 1 <= len(written) <= 5, written
    assert [r.request_id for r in backend.records] == [f"req_{i}" for i in range(appended)]


def test_a_few_thousand_records_a_second_wake_the_writer_once_a_second() -> None:
    backend = SlowBackend(delay=0)
    ledger = UsageLedger(backend)  # the defaults: flush_interval 1 s, batch_size 10,000
    try:
        for i in range(5000):
            ledger.append(_record(i))
        deadline = time.monotonic() + 10
        while len(backend.records) < 5000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert backend.batches == [5000]  # one write for the second's records, not 10 of 500
    finally:
        ledger.close()


def test_a_full_batch_is_written_before_the_interval_ends() -> None:
    backend = SlowBackend(delay=0)
    ledger = UsageLedger(backend, batch_size=100, flush_interval=60)
    for i in range(100):
        ledger.append(_record(i))
    deadline = time.monotonic() + 10
    while len(backend.records) < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(backend.records) == 100  # long before flush_interval
    ledger.append(_record(100))
    time.sleep(0.2)
    assert ledger.pending == 1  # a single record waits for the interval (or a flush)
    assert ledger.flush_sync()
    assert len(backend.records) == 101
    ledger.close()


def test_close_does_not_wait_for_the_interval() -> None:
    backend = SlowBackend(delay=0)
    ledger = UsageLedger(backend, flush_interval=60)
    ledger.append(_record(0))
    time.sleep(0.05)  # the writer is gathering
    thread = ledger._thread
    assert isinstance(thread, threading.Thread)
    started = time.monotonic()
    ledger.close()
    assert time.monotonic() - started < 5
    assert len(backend.records) == 1
    assert not thread.is_alive()


def test_the_default_batch_size_fits_a_small_backlog() -> None:
    assert UsageLedger(MemoryLedgerBackend()).batch_size == 10_000
    ledger = UsageLedger(MemoryLedgerBackend(), max_pending=500)  # valid before 10,000 too
    assert ledger.batch_size == 500
    with pytest.raises(ValueError, match="batch_size"):
        UsageLedger(MemoryLedgerBackend(), batch_size=600, max_pending=500)
