"""Catalog loading: mappings, JSON, TOML, aliases and the demo entry."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from akgate.routing import Catalog

ENTRY = {"providers": [{"name": "p", "input_price": 1, "output_price": 2}]}


def test_mapping_form() -> None:
    catalog = Catalog.from_dict({"models": {"m": {**ENTRY, "aliases": ["m2"]}}})
    model = catalog.get("m2")
    assert model is not None
    assert model.id == "m"


def test_list_form() -> None:
    catalog = Catalog.from_dict({"models": [{"id": "m", **ENTRY}]})
    assert catalog.get("m") is not None


def test_provider_model_id_defaults_to_canonical() -> None:
    model = Catalog.from_dict({"models": {"m": ENTRY}}).get("m")
    assert model is not None
    assert model.provider_model_id(model.providers[0]) == "m"


def test_duplicate_alias_rejected() -> None:
    with pytest.raises(ValueError, match="defined twice"):
        Catalog.from_dict({"models": {"a": {**ENTRY, "aliases": ["b"]}, "b": ENTRY}})


def test_typo_in_entry_rejected() -> None:
    bad = {"providers": [{"name": "p", "input_price": 1, "output_price": 2, "input_prise": 3}]}
    with pytest.raises(ValueError, match="invalid model 'm'"):
        Catalog.from_dict({"models": {"m": bad}})


def test_negative_price_rejected() -> None:
    bad = {"providers": [{"name": "p", "input_price": -1, "output_price": 2}]}
    with pytest.raises(ValueError):
        Catalog.from_dict({"models": {"m": bad}})


def test_unknown_effort_rejected() -> None:
    caps = {"reasoning": True, "reasoning_efforts": ["extreme"]}
    bad = {"providers": [{"name": "p", "input_price": 1, "output_price": 2, "capabilities": caps}]}
    with pytest.raises(ValueError):
        Catalog.from_dict({"models": {"m": bad}})


def test_reasoning_defaults_to_low_medium_high() -> None:
    entry = {
        "providers": [
            {"name": "p", "input_price": 1, "output_price": 2, "capabilities": {"reasoning": True}}
        ]
    }
    model = Catalog.from_dict({"models": {"m": entry}}).get("m")
    assert model is not None
    assert model.providers[0].capabilities.reasoning_efforts == ("low", "medium", "high")


def test_json_file(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"models": {"m": ENTRY}}))
    assert Catalog.from_file(path).get("m") is not None


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(
        '[models.m]\naliases = ["mm"]\n'
        '[[models.m.providers]]\nname = "p"\ninput_price = 1.0\noutput_price = 2.0\n'
        'endpoints = ["responses"]\n'
        "[models.m.providers.capabilities]\ntools = false\n"
    )
    model = Catalog.from_file(path).get("mm")
    assert model is not None
    assert model.endpoints == ("responses",)
    assert model.providers[0].capabilities.tools is False


def test_version_is_content_hash() -> None:
    a = Catalog.from_dict({"models": {"m": ENTRY}})
    b = Catalog.from_dict({"models": {"m": ENTRY}})
    c = Catalog.from_dict({"models": {"n": ENTRY}})
    assert a.version == b.version != c.version


def test_explicit_version_kept() -> None:
    assert Catalog.from_dict({"models": {"m": ENTRY}, "version": "v7"}).version == "v7"


def test_demo_catalog_has_priced_demo_models() -> None:
    catalog = Catalog.demo()
    demo, reasoning = catalog.get("demo"), catalog.get("demo-reasoning")
    assert demo is not None
    assert reasoning is not None
    assert demo.providers[0].name == "demo"
    assert demo.providers[0].input_price > 0
    assert demo.providers[0].output_price > 0
    assert reasoning.providers[0].capabilities.reasoning


def test_demo_catalog_on_another_provider_name() -> None:
    model = Catalog.demo(provider="app").get("demo")
    assert model is not None
    assert model.providers[0].name == "app"
