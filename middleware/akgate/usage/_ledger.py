"""The usage ledger: records are appended in O(1) on the request path and written in batches
by one writer thread, so writing never delays a response."""

from __future__ import annotations

import logging
import operator
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Final, Literal, Protocol, runtime_checkable

import anyio.to_thread

from ._record import RECORD_COLUMNS, UsageRecord

__all__ = ["GroupBy", "LedgerBackend", "MemoryLedgerBackend", "UsageLedger", "summarize_records"]

logger = logging.getLogger("akgate.usage")

GroupBy = Literal["key", "model", "day"]
#: A record's fields as a tuple, in field order (one C call).
_fields: Final = operator.attrgetter(*RECORD_COLUMNS)
#: A record's fields in ``RECORD_COLUMNS`` order: the tuple the ledger queues.
record_row: Final[Callable[[UsageRecord], tuple[Any, ...]]] = _fields
_MAX_BACKOFF: Final = 5.0
#: The default ``batch_size``: above what a busy process appends per ``flush_interval``, so the
#: writer is not woken before its interval.
_BATCH_SIZE: Final = 10_000


@runtime_checkable
class LedgerBackend(Protocol):
    """Where records are kept. Called from the ledger's writer thread (blocking is fine)."""

    def write(self, records: Sequence[UsageRecord]) -> None:
        """Store ``records`` in one transaction (all or none); raise when the store is down."""
        ...

    def summarize(self, since: float, until: float | None, by: GroupBy) -> list[dict[str, Any]]:
        """Totals per key, model or UTC day for ``since <= ts < until``."""
        ...

    def close(self) -> None: ...


def _group_of(record: UsageRecord, by: GroupBy) -> str:
    if by == "key":
        return record.key_id
    if by == "model":
        return record.model
    return time.strftime("%Y-%m-%d", time.gmtime(record.ts))


def summarize_records(
    records: Sequence[UsageRecord], since: float, until: float | None, by: GroupBy
) -> list[dict[str, Any]]:
    """The rows of :meth:`LedgerBackend.summarize`, computed in Python."""
    groups: dict[str, dict[str, Any]] = {}
    for r in records:
        if r.ts < since or (until is not None and r.ts >= until):
            continue
        name = _group_of(r, by)
        row = groups.setdefault(name, _empty_row(name))
        row["requests"] += 1
        row["errors"] += 1 if r.error_code is not None else 0
        row["input_tokens"] += r.input_tokens
        row["output_tokens"] += r.output_tokens
        row["cached_tokens"] += r.cached_tokens
        row["reasoning_tokens"] += r.reasoning_tokens
        row["cost_usd"] += r.cost_usd
    return [groups[name] for name in sorted(groups)]


def _empty_row(group: str) -> dict[str, Any]:
    return {
        "group": group,
        "requests": 0,
        "errors": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "cost_usd": 0.0,
    }


class MemoryLedgerBackend:
    """Records in a list (tests, examples): ``backend.records``."""

    def __init__(self) -> None:
        self.records: list[UsageRecord] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryLedgerBackend({len(self.records)} records)"

    def write(self, records: Sequence[UsageRecord]) -> None:
        with self._lock:
            self.records.extend(records)

    def summarize(self, since: float, until: float | None, by: GroupBy) -> list[dict[str, Any]]:
        with self._lock:
            return summarize_records(list(self.records), since, until, by)

    def close(self) -> None:
        return None


class UsageLedger:
    """Buffers records and writes them to ``backend`` in batches from one writer thread.

    :meth:`append` costs a deque append (the request path). The writer sleeps while nothing is
    queued; the first record wakes it, and from then on it writes once per ``flush_interval``
    seconds what gathered meanwhile (sooner when ``batch_size`` are waiting), up to
    ``batch_size`` per transaction. When the backend fails, the batch goes back to the front of
    the queue and is retried with backoff; at most ``max_pending`` records wait, beyond which
    the oldest are dropped and *counted* (:attr:`dropped`, logged at ERROR). :meth:`flush`
    writes everything appended so far; the spend layer calls it on lifespan shutdown,
    :meth:`aclose` flushes and stops. A process that dies without either loses what is queued:
    up to ``flush_interval`` seconds of records.

    ``on_record`` receives each record on the request path after the response's last byte
    (keep it cheap, e.g. ``queue.put_nowait``); its exceptions are logged and ignored.
    """

    def __init__(
        self,
        backend: LedgerBackend,
        *,
        batch_size: int | None = None,
        max_pending: int = 100_000,
        flush_interval: float = 1.0,
        on_record: Callable[[UsageRecord], Any] | None = None,
    ) -> None:
        if batch_size is None:
            # A second's worth of records of a busy process, within max_pending.
            batch_size = min(_BATCH_SIZE, max_pending)
        if batch_size < 1 or max_pending < batch_size:
            raise ValueError("need batch_size >= 1 and max_pending >= batch_size")
        if flush_interval < 0:
            raise ValueError("flush_interval must be >= 0")
        self.flush_interval = flush_interval
        self.backend = backend
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.on_record = on_record
        #: Records dropped because the backend stayed down while ``max_pending`` were waiting.
        self.dropped = 0
        #: Batches whose write failed (each was retried).
        self.failed_writes = 0
        # Queued as plain tuples of the record's fields: the garbage collector stops tracking a
        # tuple of strings and numbers, so records waiting for the writer cost no collection
        # time (queued as objects, they made the full stack's collections ~25 us per request
        # dearer).
        self._pending: deque[tuple[Any, ...]] = deque()
        # Set by the first record queued: the writer sleeps on it while nothing is queued.
        self._wake = threading.Event()
        # Set when batch_size records wait, and by close(): the writer stops gathering.
        self._full = threading.Event()
        # Held while a batch is taken and written: flush() waits for a write in progress.
        self._write_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._closing = False
        self._stop = threading.Event()

    def __repr__(self) -> str:
        return f"UsageLedger({self.backend!r}, pending={len(self._pending)})"

    @property
    def pending(self) -> int:
        return len(self._pending)

    def append(self, record: UsageRecord) -> None:
        """Queue ``record`` for writing (never blocks on the backend)."""
        if self.on_record is not None:
            try:
                self.on_record(record)
            except Exception as exc:
                logger.warning("akgate usage: on_record hook failed (%s)", type(exc).__name__)
        self._queue_row(_fields(record))

    def _queue_row(self, row: tuple[Any, ...]) -> None:
        """Queue a record given as its fields in ``RECORD_COLUMNS`` order (what :meth:`append`
        queues; the ``on_record`` hook is not called)."""
        pending = self._pending
        pending.append(row)
        if len(pending) > self.max_pending:
            pending.popleft()
            self.dropped += 1
            logger.error("akgate usage: ledger backlog full, a record was dropped")
        if self._thread is None:
            self._start()
        # One signal per batch, not per record (each costs the loop a lock and the writer a
        # wake-up): the first record wakes an idle writer, which then gathers for
        # flush_interval unless a full batch cuts that short.
        if len(pending) == 1:
            self._wake.set()
        elif len(pending) == self.batch_size:
            self._full.set()

    def _start(self) -> None:
        with self._thread_lock:
            if self._thread is None and not self._closing:
                thread = threading.Thread(target=self._run, name="akgate-ledger", daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        # Under load this loop takes the GIL back a few times per flush_interval (the wait,
        # and each of the backend's few statements): a thread that waits for the GIL while the
        # event loop is busy is woken by every GIL release of the loop and loses the race each
        # time, which costs the loop more than the write itself (docs/spend.md).
        while not self._closing:
            self._wake.clear()
            if not self._pending and not self._closing:
                self._wake.wait()  # idle until the first record
                continue
            if len(self._pending) < self.batch_size and not self._closing:
                self._full.wait(self.flush_interval)
            self._full.clear()
            self._write_gathered()

    def _write_gathered(self) -> None:
        """Write the records queued now, in batches, retrying a failed batch with backoff;
        records appended meanwhile wait for the next round (writing until the queue is empty
        would keep the thread writing a few records at a time under load)."""
        todo = len(self._pending)
        failures = 0
        while todo > 0 and not self._closing:
            written = self._write_batch(min(todo, self.batch_size))
            if written is None:
                failures += 1
                # Back off, but wake at once for close().
                self._stop.wait(min(_MAX_BACKOFF, 0.05 * 2**failures))
            elif written == 0:
                return  # flush() took them
            else:
                todo -= written
                failures = 0

    def _write_batch(self, most: int | None = None) -> int | None:
        """Write up to ``most`` (``batch_size``) queued records in one backend call; how many
        were written, or None when the backend failed (they are queued again, first)."""
        with self._write_lock:
            pending = self._pending
            take = pending.popleft
            count = min(self.batch_size if most is None else most, len(pending))
            rows = [take() for _ in range(count)]
            if not rows:
                return 0
            try:
                # A SQL backend takes the queued tuples as its rows: no record built per row in
                # this thread, which holds the GIL the event loop needs while it converts. Asked
                # per batch: the backend may be replaced, or its write() patched.
                backend = self.backend
                rows_writer = getattr(backend, "_rows_writer", None)
                write_rows = rows_writer() if callable(rows_writer) else None
                if write_rows is not None:
                    write_rows(rows)
                else:
                    backend.write([UsageRecord(*row) for row in rows])
            except Exception as exc:
                self.failed_writes += 1
                pending.extendleft(reversed(rows))
                logger.warning(
                    "akgate usage: writing %d records failed (%s); will retry",
                    len(rows),
                    type(exc).__name__,
                )
                return None
            return len(rows)

    def flush_sync(self) -> bool:
        """Write everything queued so far; False (logged) if the backend refused it."""
        while self._pending:
            if self._write_batch() is None:
                logger.error(
                    "akgate usage: %d records could not be written at flush", len(self._pending)
                )
                return False
        return True

    async def flush(self) -> bool:
        """Write everything queued so far, off the event loop."""
        if not self._pending:
            return True
        return await anyio.to_thread.run_sync(self.flush_sync)

    def close(self) -> None:
        """Flush, stop the writer thread and close the backend."""
        self.flush_sync()
        with self._thread_lock:
            self._closing = True
            thread = self._thread
        self._stop.set()
        self._full.set()
        self._wake.set()
        if thread is not None:
            thread.join(timeout=10)
        self.backend.close()
        with self._thread_lock:
            self._thread = None
            self._closing = False
            self._stop.clear()
            self._full.clear()

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.close)

    async def summarize(
        self, since: float, until: float | None = None, by: GroupBy = "key"
    ) -> list[dict[str, Any]]:
        """Totals per key, model or UTC day, after a flush."""
        await self.flush()
        return await anyio.to_thread.run_sync(self.backend.summarize, since, until, by)
