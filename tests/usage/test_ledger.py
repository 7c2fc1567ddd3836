"""The usage ledger: one record per finished request, exact costs, estimates for cut streams,
failures at cost 0, SQLite durability, schema versions, batching and its failure handling."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
from httpx_sse import connect_sse

from akgate import Catalog, DemoModel, gateway
from akgate.auth import MemoryKeyStore, new_key_record
from akgate.usage import (
    Limits,
    MemoryLedgerBackend,
    SQLiteUsageStore,
    UsageLedger,
    UsageRecord,
    UsageStoreError,
)
from akgate.usage._sqlite import MIGRATIONS, SCHEMA_VERSION, migrate
from tests.support.servers import run_uvicorn
from tests.usage.conftest import CHAT, CHAT_COST, Stack


async def test_json_and_stream_records_carry_the_client_cost(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    received = []
    async with stack.client() as client:
        r = await client.post("/v1/chat/completions", json=CHAT)
        received.append((r.headers["x-request-id"], r.json()["routing_metadata"]["cost"]["usd"]))
        r = await client.post("/v1/responses", json={"model": "demo-reasoning", "input": "hi"})
        received.append((r.headers["x-request-id"], r.json()["routing_metadata"]["cost"]["usd"]))
        r = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
        final = next(line for line in r.text.splitlines() if "routing_metadata" in line)
        received.append(
            (
                r.headers["x-request-id"],
                httpx.Response(200, content=final[6:]).json()["routing_metadata"]["cost"]["usd"],
            )
        )
    records = stack.records()
    assert [(rec.request_id, rec.cost_usd) for rec in records] == received  # exactly equal
    chat, responses, stream = records
    assert (chat.endpoint, chat.model, chat.provider, chat.provider_model) == (
        "chat_completions",
        "demo",
        "demo",
        "demo",
    )
    assert (chat.input_tokens, chat.output_tokens, chat.status) == (5, 15, 200)
    assert (chat.stream, chat.estimated, chat.client_disconnected) == (False, False, False)
    assert responses.endpoint == "responses"
    assert responses.reasoning_tokens > 0
    assert stream.stream
    assert stream.ttft_ms is not None
    assert stream.error_code is None


async def test_failed_request_is_recorded_at_cost_zero(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    async with stack.client() as client:
        failed = await client.post(
            "/v1/chat/completions", json=CHAT, headers={"x-demo-fault": "status=500"}
        )
        unknown = await client.post("/v1/chat/completions", json={**CHAT, "model": "nope"})
        midstream = await client.post(
            "/v1/chat/completions",
            json={**CHAT, "stream": True},
            headers={"x-demo-fault": "midstream=3"},
        )
    assert failed.status_code >= 500
    assert unknown.status_code == 404
    assert midstream.status_code == 200
    first, second, third = stack.records()
    assert (first.status, first.cost_usd, first.output_tokens) == (failed.status_code, 0.0, 0)
    assert first.error_code == failed.json()["error"]["code"]
    assert (second.status, second.cost_usd, second.error_code) == (404, 0.0, "model_not_found")
    # An error after 3 tokens: charged for the text produced, estimated.
    assert third.error_code is not None
    assert third.estimated
    assert third.output_tokens > 0


def test_stream_cut_by_the_client_after_3_chunks_is_charged(tmp_path: Path) -> None:
    new = new_key_record(name="t")
    backend = MemoryLedgerBackend()
    ledger = UsageLedger(backend)
    app = gateway(
        DemoModel(token_delay=0.05),
        keys=MemoryKeyStore([new.record]),
        catalog=Catalog.demo(),
        app_provider="demo",
        spend_options={"ledger": ledger},
    )
    payload = {
        "model": "demo",
        "stream": True,
        "messages": [{"role": "user", "content": "Write a long story about a gateway."}],
    }
    with run_uvicorn(app) as base, httpx.Client(base_url=base, timeout=20) as client:
        headers = {"authorization": f"Bearer {new.key}"}
        with connect_sse(
            client, "POST", "/v1/chat/completions", json=payload, headers=headers
        ) as source:
            chunks = []
            for event in source.iter_sse():
                chunks.append(event.json())
                if len(chunks) == 3:
                    break
        deadline = time.monotonic() + 10
        while not backend.records and time.monotonic() < deadline:
            ledger.flush_sync()
            time.sleep(0.05)
    ledger.close()
    (record,) = backend.records
    produced = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert record.client_disconnected
    assert record.estimated
    assert record.stream
    assert record.error_code == "client_disconnected"
    # At least the text the client received (and, the cut being asynchronous, a little more).
    assert record.output_tokens >= max(1, len(produced) // 4)
    assert record.output_tokens < 40
    assert record.input_tokens > 0
    assert record.cost_usd == pytest.approx(
        (record.input_tokens * 0.5 + record.output_tokens * 1.5) / 1e6
    )


async def test_ledger_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    new = new_key_record(name="t")

    def app() -> Any:
        return gateway(
            DemoModel(),
            keys=MemoryKeyStore([new.record]),
            catalog=Catalog.demo(),
            app_provider="demo",
            usage_db=path,
        )

    for _ in range(2):  # two "process lifetimes" over the same file
        stack = app()
        transport = httpx.ASGITransport(app=stack)
        headers = {"authorization": f"Bearer {new.key}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers=headers
        ) as c:
            assert (await c.post("/v1/chat/completions", json=CHAT)).status_code == 200
        await stack.aclose()
    store = SQLiteUsageStore(path)
    records = store.records()
    store.close()
    assert len(records) == 2
    assert sum(r.cost_usd for r in records) == pytest.approx(2 * CHAT_COST)


def test_clean_shutdown_under_load_loses_no_record(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    new = new_key_record(name="t")
    app = gateway(
        DemoModel(token_delay=0.01),
        keys=MemoryKeyStore([new.record]),
        catalog=Catalog.demo(),
        app_provider="demo",
        usage_db=path,
    )
    seen: list[str] = []
    errors: list[BaseException] = []
    with run_uvicorn(app, lifespan="on") as base:

        def worker() -> None:
            with httpx.Client(base_url=base, timeout=20) as client:
                for _ in range(10):
                    try:
                        r = client.post(
                            "/v1/chat/completions",
                            json={**CHAT, "stream": True},
                            headers={"authorization": f"Bearer {new.key}"},
                        )
                    except httpx.HTTPError as exc:  # the server is going away
                        errors.append(exc)
                        return
                    seen.append(r.headers["x-request-id"])

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        # Leave the server (and this test) while requests are in flight.
        deadline = time.monotonic() + 20
        while len(seen) < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
    for t in threads:
        t.join()
    store = SQLiteUsageStore(path)
    stored = {r.request_id for r in store.records()}
    store.close()
    assert seen
    assert set(seen) <= stored  # every answered request is in the ledger


def test_schema_is_versioned_and_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert migrate(conn) == 0
        assert conn.execute("SELECT version FROM schema_version").fetchone() == (SCHEMA_VERSION,)
        assert migrate(conn) == SCHEMA_VERSION  # idempotent
        # A next version's step applies once, on top of the current schema.
        step = ("ALTER TABLE usage_records ADD COLUMN region TEXT",)
        assert migrate(conn, (*MIGRATIONS, step)) == SCHEMA_VERSION
        columns = [row[1] for row in conn.execute("PRAGMA table_info(usage_records)")]
        assert "region" in columns
        # This akgate refuses a file from a newer one.
        with pytest.raises(UsageStoreError, match="newer"):
            migrate(conn)
    finally:
        conn.close()


def _record(i: int) -> UsageRecord:
    return UsageRecord(
        ts=1_773_230_400.0 + i,
        request_id=f"req_{i}",
        key_id="ak_live_aaaaaaaa",
        workspace_id="ws",
        endpoint="chat_completions",
        model="demo",
        cost_usd=0.001,
    )


class FlakyBackend(MemoryLedgerBackend):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.batches: list[int] = []

    def write(self, records: Sequence[UsageRecord]) -> None:
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("database is locked")
        self.batches.append(len(records))
        super().write(records)


def test_a_failed_write_is_retried_not_lost(caplog: pytest.LogCaptureFixture) -> None:
    backend = FlakyBackend(failures=2)
    ledger = UsageLedger(backend, batch_size=10)
    for i in range(25):
        ledger.append(_record(i))
    deadline = time.monotonic() + 10
    while len(backend.records) < 25 and time.monotonic() < deadline:
        time.sleep(0.02)
    ledger.close()
    assert [r.request_id for r in backend.records] == [f"req_{i}" for i in range(25)]
    assert ledger.failed_writes == 2
    assert max(backend.batches) <= 10
    assert "will retry" in caplog.text
    assert "locked" not in caplog.text  # exception types only


def test_a_full_backlog_drops_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    backend = FlakyBackend(failures=10**6)
    ledger = UsageLedger(backend, batch_size=2, max_pending=5)
    for i in range(8):
        ledger.append(_record(i))
    assert ledger.dropped == 3
    assert ledger.pending == 5
    assert "dropped" in caplog.text
    backend.failures = 0
    ledger.close()
    assert [r.request_id for r in backend.records] == [f"req_{i}" for i in range(3, 8)]


async def test_hook_receives_every_record(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    got: list[UsageRecord] = []
    stack.ledger.on_record = got.append
    async with stack.client() as client:
        await client.post("/v1/chat/completions", json=CHAT)
        await client.post("/v1/responses", json={"model": "demo", "input": "x", "stream": True})
    assert [r.endpoint for r in got] == ["chat_completions", "responses"]
    assert got == stack.records()


def test_summaries_group_by_key_model_and_day(tmp_path: Path) -> None:
    store = SQLiteUsageStore(tmp_path / "u.sqlite3")
    memory = MemoryLedgerBackend()
    records = [_record(i) for i in range(3)] + [
        UsageRecord(
            ts=1_773_230_400.0 + 86400,
            request_id="r",
            key_id="ak_live_bbbbbbbb",
            workspace_id="ws",
            endpoint="responses",
            model="other",
            cost_usd=0.5,
            error_code="upstream_error",
            input_tokens=7,
        )
    ]
    store.write(records)
    memory.write(records)
    for by in ("key", "model", "day"):
        rows = store.summarize(0, None, by)  # type: ignore[arg-type]
        assert rows == pytest.approx(memory.summarize(0, None, by))  # type: ignore[arg-type]
    assert [r["group"] for r in store.summarize(0, None, "day")] == ["2026-03-11", "2026-03-12"]
    assert store.summarize(1_773_230_400.0 + 3600, None, "key")[0]["requests"] == 1
    store.close()


async def test_client_gone_at_the_final_chunk_is_priced_from_the_usage(
    make_stack: Callable[..., Stack],
) -> None:
    """The provider reported its usage, but the client left as the final chunk was sent: the
    record is priced from that usage (not estimated), like routing_metadata would have been."""
    stack = make_stack()
    body = json.dumps({**CHAT, "stream": True}).encode()
    sent: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        chunk = message.get("body", b"")
        if b"routing_metadata" in chunk:
            raise OSError("connection closed")  # as an ASGI 2.4 server does
        sent.append(chunk)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {stack.key.key}".encode()),
        ],
    }
    await stack.app(scope, receive, send)
    (record,) = stack.records()
    assert record.client_disconnected
    assert not record.estimated
    assert (record.input_tokens, record.output_tokens) == (5, 15)
    assert record.cost_usd == CHAT_COST


class BlockedBackend(MemoryLedgerBackend):
    """A store whose writes wait until the test lets them through."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.writing = threading.Event()

    def write(self, records: Sequence[UsageRecord]) -> None:
        self.writing.set()
        self.release.wait(timeout=30)
        super().write(records)


async def test_a_stuck_store_never_holds_a_response(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    backend = BlockedBackend()
    stack.ledger.backend = backend
    stack.ledger.flush_interval = 0
    async with stack.client() as client:
        first = await client.post("/v1/chat/completions", json=CHAT)
        assert await anyio.to_thread.run_sync(backend.writing.wait, 10)  # the writer is stuck
        # Every answer still arrives while the store holds the writer.
        for _ in range(5):
            r = await client.post("/v1/chat/completions", json={**CHAT, "stream": True})
            assert r.status_code == 200
    assert first.status_code == 200
    assert backend.records == []
    backend.release.set()
    stack.ledger.flush_sync()
    assert len(backend.records) == 6


async def test_anthropic_messages_are_recorded_and_token_counts_are_not(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(Limits.of(daily=1.0))
    headers = {"anthropic-version": "2023-06-01"}
    body = {"model": "demo", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    async with stack.client() as client:
        answer = await client.post("/v1/messages", json=body, headers=headers)
        streamed = await client.post("/v1/messages", json={**body, "stream": True}, headers=headers)
        count = await client.post(
            "/v1/messages/count_tokens", json={"model": "demo", "messages": body["messages"]}
        )
    assert answer.status_code == streamed.status_code == count.status_code == 200
    assert answer.headers["x-budget-daily-limit"] == "1.00"
    final = next(line for line in streamed.text.splitlines() if "routing_metadata" in line)
    received = [
        answer.json()["routing_metadata"]["cost"]["usd"],
        json.loads(final[len("data: ") :])["routing_metadata"]["cost"]["usd"],
    ]
    records = stack.records()
    assert [r.endpoint for r in records] == ["messages", "messages"]  # no count_tokens record
    assert [r.cost_usd for r in records] == received
    assert [r.stream for r in records] == [False, True]
    assert (records[0].input_tokens, records[0].output_tokens) == (5, 15)


async def test_requests_refused_by_auth_are_not_recorded() -> None:
    """The ledger holds what reached the spend layer: served, failed, or refused by a budget or
    tpm. Refusals of the auth layer in front (no key, a bad or revoked key, a missing scope, the
    key's rpm) are not billable and stay out of it (docs/spend.md, "What is recorded")."""
    import httpx

    from akgate import Catalog, DemoModel, gateway
    from akgate.auth import MemoryKeyStore, new_key_record
    from akgate.usage import Limits, MemoryLedgerBackend, MemoryLimitStore, UsageLedger

    limited = new_key_record(name="rpm", rate_limit_rpm=1)
    chat_only = new_key_record(name="models", scopes=["models"])
    backend = MemoryLedgerBackend()
    ledger = UsageLedger(backend)
    app = gateway(
        DemoModel(token_delay=0),
        keys=MemoryKeyStore([limited.record, chat_only.record]),
        catalog=Catalog.demo(),
        app_provider="demo",
        spend_options={
            "ledger": ledger,
            "limits": MemoryLimitStore(keys={chat_only.key_id: Limits.of(daily=1.0)}),
        },
    )
    chat = {"model": "demo", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        url = "/v1/chat/completions"
        assert (await client.post(url, json=chat)).status_code == 401
        bad = {"authorization": "Bearer ak_live_" + "x" * 46}
        assert (await client.post(url, json=chat, headers=bad)).status_code == 401
        scoped = {"authorization": f"Bearer {chat_only.key}"}
        assert (await client.post(url, json=chat, headers=scoped)).status_code == 403
        rpm = {"authorization": f"Bearer {limited.key}"}
        assert (await client.post(url, json=chat, headers=rpm)).status_code == 200
        assert (await client.post(url, json=chat, headers=rpm)).status_code == 429
    ledger.flush_sync()
    assert [(r.key_id, r.status) for r in backend.records] == [(limited.key_id, 200)]
    ledger.close()


def test_queued_records_cost_the_garbage_collector_nothing() -> None:
    """Records waiting for the writer are kept as tuples of strings and numbers, which the
    collector stops tracking after one pass (a record object stays tracked, and a busy process
    scanned thousands of them per collection); the backend still receives ``UsageRecord``s."""
    import gc

    backend = MemoryLedgerBackend()
    ledger = UsageLedger(backend, flush_interval=60.0)
    try:
        for i in range(3):
            ledger.append(_record(i))
        gc.collect()
        assert ledger.pending == 3
        assert not any(gc.is_tracked(entry) for entry in ledger._pending)
        assert ledger.flush_sync()
        assert backend.records == [_record(i) for i in range(3)]
    finally:
        ledger.close()
