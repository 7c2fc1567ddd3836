from __future__ import annotations

import pytest

from akgate.auth._keys import generate_key


@pytest.fixture
def key() -> str:
    """A full ``ak_live_`` key (pass it to ``gateway(keys=[key])``)."""
    return generate_key("live")[0]


@pytest.fixture
def test_key() -> str:
    return generate_key("test")[0]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Default key stores live in a temporary ``$AKGATE_HOME``, never in ``~/.akgate``."""
    monkeypatch.setenv("AKGATE_HOME", str(tmp_path))
    monkeypatch.delenv("AKGATE_API_KEYS", raising=False)
