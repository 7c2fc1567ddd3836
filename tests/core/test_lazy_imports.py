"""``import akgate`` is cheap: each public name imports its module on first use (PEP 562)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import akgate
import akgate.schemas


def _loaded_after(statement: str, modules: tuple[str, ...]) -> list[str]:
    """The ``modules`` a fresh interpreter holds after running ``statement``."""
    code = f"import sys\n{statement}\nprint(*[m for m in {modules!r} if m in sys.modules])"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=ENV
    )
    return out.stdout.split()


#: This checkout's package first, as in the test run itself.
ENV = {**os.environ, "PYTHONPATH": str(Path(akgate.__file__).parents[1])}
HEAVY = ("akgate.schemas", "akgate.stack", "akgate.routing", "pydantic", "httpx")


def test_import_akgate_imports_no_layer_schema_or_client() -> None:
    assert _loaded_after("import akgate", HEAVY) == []


def test_auth_alone_imports_no_schema() -> None:
    assert _loaded_after("from akgate import APIKeyAuth, create_key", HEAVY) == []


def test_a_schema_module_loads_alone() -> None:
    loaded = _loaded_after(
        "from akgate.schemas import ChatCompletionRequest",
        ("akgate.schemas.chat_request", "akgate.schemas.responses", "akgate.schemas.models"),
    )
    assert loaded == ["akgate.schemas.chat_request"]


def test_every_public_name_imports_from_a_fresh_interpreter() -> None:
    names = ", ".join(akgate.__all__)
    code = (
        f"from akgate import {names}\n"
        "import akgate\n"
        "assert akgate.Routing.__module__ == 'akgate', akgate.Routing.__module__\n"
        "assert sorted(set(akgate.__all__) - set(dir(akgate))) == []\n"
        # Not dependencies of akgate (pyproject.toml): only the test suite installs them.
        "import sys\n"
        "assert not {'starlette', 'asgiref'} & set(sys.modules), sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=ENV)


@pytest.mark.parametrize("package", [akgate, akgate.schemas])
def test_unknown_names_are_attribute_errors(package: object) -> None:
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = package.nope  # type: ignore[attr-defined]
    assert set(package.__all__) <= set(dir(package))  # type: ignore[attr-defined]
