from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

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
        "usage",
        "asgi",
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


#: Internals that subpackages listed in ``__all__`` before: package -> name -> private module.
DEPRECATED_INTERNALS = {
    "akgate.auth": {
        "INFERENCE_SCOPES": "_middleware",
        "default_db_path": "_sqlite",
        "generate_key": "_keys",
        "hash_key": "_keys",
        "parse_key": "_keys",
    },
    "akgate.validation": {
        "AUTH_KEYS": "_extensions",
        "CHAT_FIELDS": "_validate",
        "CORE_FIELDS": "_extensions",
        "LEGACY_FIELDS": "_validate",
        "RESPONSES_FIELDS": "_validate",
        "UnknownFields": "_validate",
        "error_from_validation": "_from_pydantic",
        "loc_to_param": "_from_pydantic",
        "sanitize_extensions": "_extensions",
    },
    "akgate.routing": {
        "STRATEGY_WEIGHTS": "_strategies",
        "compute_cost": "_cost",
        "split_suffix": "_strategies",
    },
    "akgate.usage": {
        "PERIODS": "_periods",
        "SCHEMA_VERSION": "_sqlite",
        "default_usage_path": "_sqlite",
        "format_usd": "_middleware",
        "period_window": "_periods",
    },
    "akgate.store": {
        "REASONING_KEYS_ENV": "_reasoning:KEYS_ENV",
        "default_responses_path": "_sqlite",
    },
}


@pytest.mark.parametrize(
    ("package", "name"),
    [(package, name) for package, names in DEPRECATED_INTERNALS.items() for name in names],
)
def test_internals_leave_all_but_still_import_with_a_warning(package: str, name: str) -> None:
    module = importlib.import_module(package)
    assert name not in module.__all__
    source, _, private_name = DEPRECATED_INTERNALS[package][name].partition(":")
    private = importlib.import_module(f"{package}.{source}")
    with pytest.warns(DeprecationWarning, match=f"{package}.{name} is deprecated"):
        value = getattr(module, name)
    assert value is getattr(private, private_name or name)


def test_types_that_public_functions_return_stay_public() -> None:
    import akgate.usage

    # open_usage_store returns it; it is the base of both SQL usage stores.
    assert "SQLUsageStore" in akgate.usage.__all__
    assert issubclass(akgate.usage.SQLiteUsageStore, akgate.usage.SQLUsageStore)
    assert issubclass(akgate.usage.PostgresUsageStore, akgate.usage.SQLUsageStore)


def test_a_missing_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        akgate.auth.no_such_name  # type: ignore[attr-defined]


def test_the_asgi_toolkit_is_public() -> None:
    import akgate._asgi
    import akgate.asgi

    for name in akgate.asgi.__all__:
        assert getattr(akgate.asgi, name) is getattr(akgate._asgi, name)
    assert {"read_body", "parse_json_object", "replay_receive", "scope_with_body"} <= set(
        akgate.asgi.__all__
    )


@pytest.mark.parametrize(
    ("old", "new", "names"),
    [
        ("akgate.providers.upstream", "akgate.providers._upstream", ["UpstreamProvider"]),
        ("akgate.providers.demo", "akgate.providers._demo", ["DemoModel", "count_tokens"]),
        ("akgate.schemas.errors", "akgate.schemas.envelope", ["ErrorEnvelope", "ErrorObject"]),
    ],
)
def test_renamed_modules_still_import_with_a_warning(old: str, new: str, names: list[str]) -> None:
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated"):
        module = importlib.import_module(old)
    for name in names:
        assert getattr(module, name) is getattr(importlib.import_module(new), name)


def test_catalog_provider_is_the_old_name_of_offering() -> None:
    import akgate.routing

    for package in (akgate, akgate.routing):
        with pytest.warns(DeprecationWarning, match="it is called .*Offering now"):
            old = package.CatalogProvider  # type: ignore[attr-defined]
        assert old is akgate.routing.Offering is akgate.Offering
    assert "CatalogProvider" not in akgate.__all__
    assert "CatalogProvider" not in vars(akgate)  # not cached: every use warns
