"""akgate keys create/update with budgets and tpm, akgate workspaces update, akgate usage."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import anyio
import httpx
import pytest

from akgate import Catalog, DemoModel, gateway
from akgate.auth import SQLiteKeyStore
from akgate.cli import main
from akgate.usage import Budget, Limits, SQLiteUsageStore
from akgate.usage._cli import parse_since


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def limits_of(usage_db: Path, scope: str, scope_id: str) -> Limits | None:
    store = SQLiteUsageStore(usage_db)
    try:
        return store.get_limits_sync(scope, scope_id)  # type: ignore[arg-type]
    finally:
        store.close()


def test_create_with_budgets_then_update_without_reissuing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "keys.sqlite3"
    code, out, _ = run(
        capsys, "keys", "create", "--name", "ci", "--db", str(db), "--json",
        "--budget-daily", "5", "--budget-monthly", "100", "--budget-soft", "--tpm", "20000",
    )  # fmt: skip
    assert code == 0
    created = json.loads(out)
    key_id = created["key_id"]
    assert created["limits"] == {
        "budgets": {"daily": 5.0, "monthly": 100.0},
        "budget_enforce": False,
        "tpm": 20000,
    }
    usage_db = tmp_path / "usage.sqlite3"  # beside the key file
    assert limits_of(usage_db, "api_key", key_id) == Limits(
        {"daily": Budget(5.0, False), "monthly": Budget(100.0, False)}, 20000
    )
    code, out, _ = run(
        capsys, "keys", "update", key_id, "--db", str(db),
        "--budget-daily", "none", "--budget-weekly", "7.5", "--budget-enforce",
    )  # fmt: skip
    assert code == 0, out
    assert limits_of(usage_db, "api_key", key_id) == Limits(
        {"weekly": Budget(7.5), "monthly": Budget(100.0)}, 20000
    )
    code, _, err = run(capsys, "keys", "update", "ak_live_zzzzzzzz", "--db", str(db), "--tpm", "5")
    assert code == 1
    assert "no key" in err
    code, _, err = run(capsys, "keys", "update", key_id, "--db", str(db))
    assert code == 1
    assert "nothing to update" in err


def test_workspace_budget(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    usage_db = tmp_path / "u.sqlite3"
    code, _, _ = run(
        capsys, "workspaces", "update", "team-a", "--usage-db", str(usage_db),
        "--budget-monthly", "250",
    )  # fmt: skip
    assert code == 0
    assert limits_of(usage_db, "workspace", "team-a") == Limits({"monthly": Budget(250.0)})


def test_bad_budget_values_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("-1", "nan", "x"):
        with pytest.raises(SystemExit):
            main(["keys", "create", "--name", "x", "--budget-daily", bad])
    capsys.readouterr()


def test_usage_totals_equal_what_the_client_received(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "keys.sqlite3"
    keys = []
    for name in ("a", "b"):
        code, out, _ = run(capsys, "keys", "create", "--name", name, "--db", str(db))
        keys.append(out.strip())
    received = anyio.run(serve_some, db, tmp_path / "usage.sqlite3", keys)
    code, out, _ = run(capsys, "usage", "--db", str(db), "--since", "1d", "--by", "key", "--json")
    assert code == 0
    rows = json.loads(out)["rows"]
    assert sum(row["requests"] for row in rows) == 9
    assert sum(row["cost_usd"] for row in rows) == pytest.approx(received, rel=1e-12)
    code, out, _ = run(capsys, "usage", "--db", str(db), "--by", "model", "--csv")
    table = list(csv.DictReader(io.StringIO(out)))
    assert [row["model"] for row in table] == ["demo", "demo-reasoning"]
    assert sum(float(row["cost_usd"]) for row in table) == pytest.approx(received, rel=1e-12)
    code, out, _ = run(capsys, "usage", "--db", str(db), "--by", "day")
    assert code == 0
    assert out.splitlines()[-1].startswith("TOTAL")
    assert f"{received:.6f}" in out.splitlines()[-1]


async def serve_some(db: Path, usage_db: Path, keys: list[str]) -> float:
    """Nine answers over two keys and two models; the sum of the cost.usd received."""
    store = SQLiteKeyStore(db)
    app = gateway(
        DemoModel(), keys=store, catalog=Catalog.demo(), app_provider="demo", usage_db=usage_db
    )
    received = 0.0
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for i, (model, key) in enumerate(
            [("demo", keys[0]), ("demo-reasoning", keys[0]), ("demo", keys[1])] * 3
        ):
            body = {"model": model, "messages": [{"role": "user", "content": f"n{i}"}]}
            r = await client.post(
                "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
            )
            received += r.json()["routing_metadata"]["cost"]["usd"]
    await app.aclose()  # type: ignore[attr-defined]
    await store.aclose()
    return received


def test_parse_since() -> None:
    assert parse_since("7d", now=1000000.0) == 1000000.0 - 7 * 86400
    assert parse_since("2026-03-11") == 1_773_187_200.0
    with pytest.raises(ValueError, match="7d"):
        parse_since("soon")


def test_workers_without_redis_warn_that_limits_are_per_worker(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``akgate serve --workers 3`` without ``--redis``: one warning at start-up naming what is
    counted per worker and the fix; none with ``--redis`` or with one worker. (The port is taken,
    so serve stops right after the warning, before any worker starts.)"""
    import socket

    from akgate._serve import ServeConfig, serve

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert serve(ServeConfig(port=port, workers=3)) == 1
        err = capsys.readouterr().err
        assert "--workers 3 without --redis" in err
        assert "rpm" in err
        assert "tpm" in err
        assert "budgets" in err
        assert "up to 3 times over" in err
        assert "Add --redis URL" in err
        for config in (
            ServeConfig(port=port, workers=3, redis_url="redis://127.0.0.1:1/0"),
            ServeConfig(port=port, workers=1),
        ):
            assert serve(config) == 1
            assert "without --redis" not in capsys.readouterr().err
