"""The PostgreSQL usage store against a real server (started from the apt binaries)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from akgate import Catalog, DemoModel, gateway
from akgate.auth import MemoryKeyStore, new_key_record
from akgate.cli import main
from akgate.usage import (
    Budget,
    Limits,
    MemoryLedgerBackend,
    PostgresUsageStore,
    UsageStoreError,
)
from akgate.usage._postgres import PG_MIGRATIONS, pg_migrate
from akgate.usage._sqlite import SCHEMA_VERSION
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
