"""akgate keys create|list|revoke, in-process and once as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from akgate.auth import MemoryKeyStore, SQLiteKeyStore
from akgate.auth._cli import parse_expires
from akgate.auth._keys import hash_key, parse_key
from akgate.cli import main
from tests.support.servers import RedisServer


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def lookup(db: Path, key: str) -> object:
    store = SQLiteKeyStore(db)
    try:
        return await store.lookup(hash_key(key))
    finally:
        await store.aclose()


def test_create_prints_key_once_and_stores_hash(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "k.db"
    code, out, err = run(capsys, "keys", "create", "--name", "ci", "--db", str(db), "--rpm", "60")
    assert code == 0
    key = out.strip()
    assert key.startswith("ak_live_")
    assert key not in err
    assert key[:16] in err
    record = anyio.run(lookup, db, key)
    assert record is not None
    assert key not in db.read_bytes().decode("latin-1")


def test_create_test_key_with_options(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = str(tmp_path / "k.db")
    code, out, _ = run(
        capsys,
        "keys",
        "create",
        "--name",
        "t",
        "--test",
        "--db",
        db,
        "--scopes",
        "chat,models",
        "--models",
        "gpt-4o*",
        "--expires",
        "30d",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert data["key"].startswith("ak_test_")
    assert data["environment"] == "test"
    assert data["scopes"] == ["chat", "models"]
    assert data["allowed_models"] == ["gpt-4o*"]
    assert data["expires_at"].endswith("Z")
    assert "key_hash" not in data


def test_list_shows_ids_not_secrets(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = str(tmp_path / "k.db")
    _, key, _ = run(capsys, "keys", "create", "--name", "alpha", "--db", db)
    code, out, _ = run(capsys, "keys", "list", "--db", db)
    assert code == 0
    assert "alpha" in out
    assert key.strip()[:16] in out
    assert key.strip() not in out
    code, out, _ = run(capsys, "keys", "list", "--db", db, "--json")
    assert json.loads(out)[0]["status"] == "active"


def test_revoke(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = str(tmp_path / "k.db")
    _, key, _ = run(capsys, "keys", "create", "--name", "a", "--db", db)
    key_id = key.strip()[:16]
    assert run(capsys, "keys", "revoke", key_id, "--db", db)[0] == 0
    _, out, _ = run(capsys, "keys", "list", "--db", db, "--json")
    assert json.loads(out)[0]["status"] == "revoked"


def test_revoke_unknown_id_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = str(tmp_path / "k")
    run(capsys, "keys", "create", "--name", "a", "--db", db)
    code, _, err = run(capsys, "keys", "revoke", "ak_live_00000000", "--db", db)
    assert code == 1
    assert "no key" in err


@pytest.mark.parametrize("action", [["revoke", "ak_live_00000000"], ["list"]])
def test_list_and_revoke_never_create_a_missing_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, action: list[str]
) -> None:
    db = tmp_path / "k"
    code, _, err = run(capsys, "keys", *action, "--db", str(db))
    assert code == 1
    assert "the file is missing" in err
    assert not db.exists()


def test_bad_expires_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(
        capsys, "keys", "create", "--name", "a", "--expires", "soon", "--db", str(tmp_path / "k")
    )
    assert code == 1
    assert "--expires" in err


def test_past_expires_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, _ = run(
        capsys,
        "keys",
        "create",
        "--name",
        "a",
        "--expires",
        "2001-01-01",
        "--db",
        str(tmp_path / "k"),
    )
    assert code == 1


def test_parse_expires_forms() -> None:
    assert parse_expires("2h", now=100.0) == 100.0 + 7200
    assert parse_expires("2030-01-01") == parse_expires("2030-01-01T00:00:00Z")


def test_unreachable_store_fails_cleanly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "f"
    blocker.write_text("x")
    code, _, err = run(capsys, "keys", "list", "--db", str(blocker / "k.db"))
    assert code == 1
    assert "unavailable" in err


def test_default_db_under_akgate_home(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AKGATE_HOME", str(tmp_path))
    assert run(capsys, "keys", "create", "--name", "a")[0] == 0
    assert (tmp_path / "keys.sqlite3").exists()


def test_redis_store(capsys: pytest.CaptureFixture[str], redis_server: RedisServer) -> None:
    redis_server.flush()
    code, key, _ = run(capsys, "keys", "create", "--name", "r", "--redis", redis_server.url)
    assert code == 0
    _, out, _ = run(capsys, "keys", "list", "--redis", redis_server.url, "--json")
    assert [row["key_id"] for row in json.loads(out)] == [key.strip()[:16]]


def test_cli_as_subprocess(tmp_path: Path) -> None:
    root = Path(__file__).parents[2]
    env = {**os.environ, "PYTHONPATH": str(root / "middleware"), "AKGATE_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "akgate", "keys", "create", "--name", "sub", "--test"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("ak_test_")
    assert (tmp_path / "keys.sqlite3").exists()


def test_generate_prints_a_valid_key_and_stores_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AKGATE_HOME", str(tmp_path))
    code, out, err = run(capsys, "keys", "generate", "--test")
    assert code == 0
    key = out.strip()
    assert parse_key(key.encode()) == (key[:16], "test")
    assert "not stored" in err
    assert not list(tmp_path.iterdir())
    monkeypatch.setenv("AKGATE_API_KEYS", key)
    assert len(anyio.run(MemoryKeyStore.from_env().list_keys)) == 1


def test_bad_env_keys_exit_with_one_line_naming_the_entry(tmp_path: Path) -> None:
    env = {**os.environ, "AKGATE_API_KEYS": "sk-supersecret-value", "AKGATE_HOME": str(tmp_path)}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "middleware")
    code = "import akgate; akgate.gateway(lambda *a: None, models=['m'])"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "akgate: $AKGATE_API_KEYS entry 1 of 1 is not an akgate API key (ak_live_/ak_test_ with "
        "a valid checksum; make one with 'akgate keys generate')"
    ]
