from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

import akgate
import akgate.usage
from akgate import DemoModel, MemoryKeyStore, create_key, gateway
from akgate.usage import Limits, MemoryLedgerBackend, MemoryLimitStore, UsageLedger
from tests.integrations.test_no_reference_cycles import CHAT, RESPONSES, serve_once


def test_usage_declares_all_and_the_package_reexports_the_main_names() -> None:
    assert isinstance(akgate.usage.__all__, list)
    for name in ("SpendControl", "UsageLedger", "Limits", "Budget", "SQLiteUsageStore"):
        assert name in akgate.__all__
        assert getattr(akgate, name) is getattr(akgate.usage, name)


def test_import_does_not_pull_the_postgres_driver() -> None:
    code = "import sys, akgate, akgate.usage; print('psycopg' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(Path(akgate.__file__).parents[1])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses"])
async def test_spend_layer_leaves_no_garbage_cycles(path: str, stream: bool) -> None:
    store = MemoryKeyStore()
    new = await create_key(store, name="cycles")
    ledger = UsageLedger(MemoryLedgerBackend())
    limits = MemoryLimitStore(keys={new.key_id: Limits.of(daily=100.0, tpm=10**9)})
    app = gateway(DemoModel(), keys=store, spend_options={"ledger": ledger, "limits": limits})
    payload = {**(CHAT if "chat" in path else RESPONSES), "stream": stream}
    for _ in range(3):
        await serve_once(app, path, payload, new.key)
    gc.collect()
    gc.disable()
    try:
        for _ in range(10):
            await serve_once(app, path, payload, new.key)
        assert gc.collect() == 0
    finally:
        gc.enable()
        ledger.close()


def test_spend_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """The benchmark runs end to end with tiny counts (no timing is asserted)."""
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_spend.py"
    spec = importlib.util.spec_from_file_location("bench_spend", script)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_spend"] = module
    spec.loader.exec_module(module)
    assert module.main(["--n", "50", "--rounds", "1", "--no-redis"]) == 0
    out = capsys.readouterr().out
    assert "ledger (SQLite, batched)" in out
    assert "records written to SQLite" in out
