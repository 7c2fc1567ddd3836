"""How the first screen names the key store, and which key it offers."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from akgate import MemoryKeyStore, SQLiteKeyStore
from akgate._firstrun import choose_key, store_label
from akgate.auth import new_key_record
from akgate.auth._keys import generate_key


def test_store_label_names_the_sqlite_file_and_hides_a_redis_password(tmp_path: Path) -> None:
    db = tmp_path / "my keys.sqlite3"
    assert store_label(SQLiteKeyStore(db), str(db), None) == (str(db), f"--db '{db}'")
    shown, option = store_label(MemoryKeyStore(), None, "redis://:hunter2@cache:6380/1")
    assert shown == "Redis at redis://cache:6380 (password hidden)"
    assert option == '--redis "$AKGATE_REDIS_URL"'
    assert "hunter2" not in shown + option
    assert store_label(MemoryKeyStore(), None, "redis://cache/0")[1] == "--redis redis://cache/0"


def test_choose_key_uses_akgate_key_only_when_the_store_knows_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    known = new_key_record(environment="test")
    revoked = new_key_record(environment="test")
    store = MemoryKeyStore([known.record, revoked.record])
    anyio.run(store.revoke, revoked.key_id)

    def choice_for(value: str | None) -> tuple[str, str]:
        if value is None:
            monkeypatch.delenv("AKGATE_KEY", raising=False)
        else:
            monkeypatch.setenv("AKGATE_KEY", value)
        choice = anyio.run(choose_key, store, None)
        return choice.kind, choice.note

    assert choice_for(known.key) == ("env", "")
    assert choice_for(None) == ("none", "$AKGATE_KEY is not set")
    assert choice_for("sk-nope") == ("none", "$AKGATE_KEY is not an akgate key")
    assert (
        choice_for(generate_key("test")[0])[1] == "$AKGATE_KEY is not an active key of this store"
    )
    assert choice_for(revoked.key)[1] == "$AKGATE_KEY is not an active key of this store"
    assert anyio.run(choose_key, store, known.key).kind == "new"
