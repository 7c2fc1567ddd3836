from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import akgate


def test_all_is_sorted_and_complete() -> None:
    public = {name for name in vars(akgate) if not name.startswith("_") and name[0].isupper()}
    public |= {"gateway", "get_context", "create_key", "ensure_demo_key", "open_key_store"}
    public |= {"open_response_store"}
    assert set(akgate.__all__) >= public - {"annotations"}
    assert akgate.__all__ == sorted(akgate.__all__, key=lambda n: (not n.isupper(), n))
    for name in akgate.__all__:
        assert getattr(akgate, name) is not None


def test_public_names_report_the_package() -> None:
    assert akgate.Routing.__module__ == "akgate"
    assert akgate.gateway.__module__ == "akgate"


def test_py_typed_is_shipped() -> None:
    assert (Path(akgate.__file__).parent / "py.typed").is_file()


def test_subpackages_declare_all() -> None:
    for name in (
        "auth",
        "validation",
        "adapter",
        "routing",
        "providers",
        "schemas",
        "stack",
        "ops",
        "store",
    ):
        module = importlib.import_module(f"akgate.{name}")
        assert isinstance(module.__all__, list), name


def test_core_import_does_not_pull_optional_extras() -> None:
    code = (
        "import sys, akgate; "
        "print(sorted(m for m in ('redis', 'uvicorn', 'django', 'prometheus_client', "
        "'opentelemetry') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
