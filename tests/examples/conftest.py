from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest

from akgate.auth._keys import generate_key


@pytest.fixture
def key(tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> str:
    """A key in ``$AKGATE_API_KEYS`` (what ``default_store()`` reads), home in a temp dir."""
    monkeypatch.setenv("AKGATE_HOME", str(tmp_path))
    value = generate_key("live")[0]
    monkeypatch.setenv("AKGATE_API_KEYS", value)
    return value


@pytest.fixture
def load() -> Iterator[Callable[[str], ModuleType]]:
    """Import an example module afresh (it reads the environment at import time)."""
    loaded: list[str] = []

    def _load(name: str) -> ModuleType:
        sys.modules.pop(name, None)
        loaded.append(name)
        return importlib.import_module(name)

    yield _load
    for name in loaded:
        sys.modules.pop(name, None)
