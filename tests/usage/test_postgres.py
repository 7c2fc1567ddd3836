"""The PostgreSQL usage store against a real server (started from the apt binaries)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from akgate import Catalog, DemoModel, gateway
from akgate.auth import MemoryKeyStore, new_key_record
from akgate.cli import main
from akgate.usage import (
    Budget,
    Limits,
    MemoryLedgerBackend,
    PostgresUsageStore,
    UsageRecord,
    UsageStoreError,
)
from akgate.usage._postgres import COLUMN_TYPES, PG_MIGRATIONS, pg_migrate
from akgate.usage._record import RECORD_COLUMNS
from akgate.usage._sqlite import SCHEMA_VERSION
from akgate.usage._sqlstore import _record_row
from tests.support.postgres import PostgresServer, require_postgres
from tests.usage.conftest import CHAT
from tests.usage.test_ledger import _record


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer(require_postgres())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def url(postgres: PostgresServer) -> Iterator[str]:
    import psycopg

    yield postgres.url
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS usage_records, spend_limits, schema_version")


async def test_gateway_ledger_and_limits_in_postgres(url: str) -> None:
    new = new_key_record(name="pg")
    seed = PostgresUsageStore(url)
    seed.set_limits_sync("api_key", new.key_id, Limits.of(daily=0.00005))
    seed.close()
    app = gateway(
        DemoModel(),
        keys=MemoryKeyStore([new.record]),
        catalog=Catalog.demo(),
        app_provider="demo",
        usage_db=url,
    )
    received = []
    transport = httpx.ASGITransport(app=app)
    headers = {"authorization": f"Bearer {new.key}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        for _ in range(3):
            r = await c.post("/v1/chat/completions", json=CHAT)
            received.append(r.status_code)
            if r.status_code == 200:
                assert r.json()["routing_metadata"]["cost"]["usd"] > 0
    await app.aclose()  # type: ignore[attr-defined]
    assert received == [200, 200, 429]
    store = PostgresUsageStore(url)
    try:
        records = store.records()
        assert [r.status for r in records] == [200, 200, 429]
        assert records[2].error_code == "budget_exhausted"
        assert records[0].stream is False
        rows = store.summarize(0, None, "key")
        assert rows[0]["requests"] == 3
        assert rows[0]["errors"] == 1
        assert rows[0]["cost_usd"] == pytest.approx(sum(r.cost_usd for r in records))
    finally:
        store.close()


def test_summaries_match_the_reference(url: str) -> None:
    store = PostgresUsageStore(url)
    memory = MemoryLedgerBackend()
    records = [_record(i) for i in range(3)]
    try:
        store.write(records)
        memory.write(records)
        for by in ("key", "model", "day"):
            assert store.summarize(0, None, by) == pytest.approx(memory.summarize(0, None, by))  # type: ignore[arg-type]
        assert store.records() == records
        store.set_limits_sync("workspace", "w", Limits.of(monthly=3.0, enforce=False))
        assert store.get_limits_sync("workspace", "w") == Limits({"monthly": Budget(3.0, False)})
    finally:
        store.close()


def test_schema_versions(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        assert pg_migrate(conn) == 0
        assert pg_migrate(conn) == SCHEMA_VERSION
        step = ("ALTER TABLE usage_records ADD COLUMN region TEXT",)
        assert pg_migrate(conn, (*PG_MIGRATIONS, step)) == SCHEMA_VERSION
        with pytest.raises(UsageStoreError, match="newer"):
            pg_migrate(conn)


def test_server_down_is_a_usage_store_error(postgres: PostgresServer) -> None:
    store = PostgresUsageStore(f"postgresql://postgres@127.0.0.1:{postgres.port + 1}/x")
    with pytest.raises(UsageStoreError) as info:
        store.write([_record(0)])
    assert "postgres@" not in str(info.value)
    assert repr(store) == "PostgresUsageStore(...)"


def test_cli_against_postgres(url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["workspaces", "update", "team", "--usage-db", url, "--budget-daily", "2"]) == 0
    store = PostgresUsageStore(url)
    try:
        store.write([_record(i) for i in range(4)])
    finally:
        store.close()
    capsys.readouterr()
    assert main(["usage", "--usage-db", url, "--since", "2026-01-01", "--json"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rows[0]["requests"] == 4
    assert rows[0]["cost_usd"] == pytest.approx(0.004)


# -- the writer's one statement per batch ---------------------------------------------------------


@contextmanager
def protocol_trace(store: PostgresUsageStore) -> Iterator[list[str]]:
    """The protocol messages the store's connection sends meanwhile (libpq's trace)."""
    sent: list[str] = []
    with tempfile.TemporaryFile("w+") as trace:
        conn = store._locked(lambda conn: conn)
        conn.pgconn.trace(trace.fileno())
        try:
            yield sent
        finally:
            conn.pgconn.untrace()
            trace.seek(0)
            sent.extend(fields[3] for line in trace if (fields := line.split("\t"))[1:2] == ["F"])


def test_a_batch_is_one_statement(url: str) -> None:
    store = PostgresUsageStore(url)
    records = [_record(i) for i in range(2500)]
    try:
        with protocol_trace(store) as sent:
            store.write(records)
        # One statement (autocommit: its own transaction), not BEGIN, 2500 INSERTs, COMMIT.
        assert sent.count("Execute") + sent.count("Query") == 1
        assert store.records() == records
    finally:
        store.close()


def test_column_types_are_the_tables(url: str) -> None:
    store = PostgresUsageStore(url)
    try:
        rows = store._locked(
            lambda conn: conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'usage_records' AND column_name <> 'id'"
            ).fetchall()
        )
    finally:
        store.close()
    assert dict(rows) == COLUMN_TYPES
    assert list(COLUMN_TYPES) == list(RECORD_COLUMNS)


_pg_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)
_pg_ints = st.integers(-(2**63), 2**63 - 1) | st.integers(0, 2**40)
_pg_records = st.builds(
    UsageRecord,
    ts=st.floats(),
    request_id=_pg_text,
    key_id=_pg_text,
    workspace_id=_pg_text,
    endpoint=_pg_text,
    model=_pg_text,
    provider=st.none() | _pg_text,
    provider_model=st.none() | _pg_text,
    input_tokens=_pg_ints,
    output_tokens=_pg_ints,
    cached_tokens=_pg_ints,
    reasoning_tokens=_pg_ints,
    cost_usd=st.floats(),
    cache_savings_usd=st.floats(allow_nan=False, allow_infinity=False),
    ttft_ms=st.none() | st.floats(),
    duration_ms=st.floats(),
    status=st.integers(-(2**31), 2**31 - 1),
    error_code=st.none() | _pg_text,
    stream=st.booleans(),
    client_disconnected=st.booleans(),
    estimated=st.booleans(),
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_pg_records, min_size=1, max_size=10))
def test_rows_are_exactly_what_executemany_wrote(url: str, records: list[UsageRecord]) -> None:
    """Unicode, None, NaN and infinities, floats to the last bit, big ints: the one statement
    stores what one INSERT per row (``executemany``, before) stored, in order."""
    import psycopg

    columns = ", ".join(RECORD_COLUMNS)
    select = f"SELECT {columns} FROM usage_records ORDER BY id"
    row_insert = (
        f"INSERT INTO usage_records ({columns}) VALUES ({', '.join(['%s'] * len(RECORD_COLUMNS))})"
    )
    rows = [_record_row(r) for r in records]

    def stored(conn: Any) -> list[tuple[Any, ...]]:
        found = conn.execute(select).fetchall()
        conn.execute("TRUNCATE usage_records RESTART IDENTITY")
        return [tuple(v.hex() if isinstance(v, float) else v for v in row) for row in found]

    store = PostgresUsageStore(url)
    try:
        store.write_rows(rows)
        after = store._locked(stored)
        with psycopg.connect(url, autocommit=True) as conn:
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(row_insert, rows)
            before = stored(conn)
    finally:
        store.close()
    assert after == before
