from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from akgate.providers._schema_instance import schema_instance
from tests.providers._jsonschema_check import errors

names = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)


@st.composite
def string_schemas(draw: st.DrawFn) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": draw(st.sampled_from(["string", ["string", "null"]]))}
    choice = draw(st.sampled_from(["plain", "length", "format", "enum"]))
    if choice == "length":
        low = draw(st.integers(0, 12))
        schema["minLength"] = low
        schema["maxLength"] = low + draw(st.integers(0, 5))
    elif choice == "format":
        schema["format"] = draw(
            st.sampled_from(["date-time", "date", "email", "uri", "uuid", "ipv4"])
        )
    elif choice == "enum":
        schema["enum"] = draw(st.lists(st.text(max_size=5), min_size=1, max_size=4, unique=True))
    return schema


@st.composite
def number_schemas(draw: st.DrawFn) -> dict[str, Any]:
    integer = draw(st.booleans())
    schema: dict[str, Any] = {"type": "integer" if integer else "number"}
    low = draw(st.integers(-1000, 1000))
    width = draw(st.integers(12, 500))
    if draw(st.booleans()):
        schema["exclusiveMinimum" if draw(st.booleans()) else "minimum"] = low
    if draw(st.booleans()):
        schema["exclusiveMaximum" if draw(st.booleans()) else "maximum"] = low + width
    if draw(st.booleans()):
        schema["multipleOf"] = draw(
            st.sampled_from([1, 2, 3, 5]) if integer else st.sampled_from([0.5, 0.25, 2, 0.1])
        )
    return schema


leaves = st.one_of(
    string_schemas(),
    number_schemas(),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.just({}),
)


def containers(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def objects(draw: st.DrawFn) -> dict[str, Any]:
        props = draw(st.dictionaries(names, children, max_size=4))
        required = draw(st.lists(st.sampled_from(sorted(props)), unique=True)) if props else []
        schema: dict[str, Any] = {"type": "object", "properties": props, "required": required}
        if draw(st.booleans()):
            schema["additionalProperties"] = False
        return schema

    @st.composite
    def arrays(draw: st.DrawFn) -> dict[str, Any]:
        low = draw(st.integers(0, 3))
        return {"type": "array", "items": draw(children), "minItems": low, "maxItems": low + 2}

    any_of = st.lists(children, min_size=1, max_size=3).map(lambda branches: {"anyOf": branches})
    return st.one_of(objects(), arrays(), any_of)


schemas = st.recursive(leaves, containers, max_leaves=12)


@settings(max_examples=60)
@given(schemas)
def test_generated_instance_is_valid_for_generated_schemas(schema: dict[str, Any]) -> None:
    value = schema_instance(schema)
    assert errors(value, schema) == [], (schema, value)


def test_required_nested_and_enum_fields_are_filled() -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["fahrenheit", "celsius"]},
            "when": {
                "type": "object",
                "properties": {"day": {"type": "string", "format": "date"}},
                "required": ["day"],
            },
        },
        "required": ["city", "unit", "when"],
        "additionalProperties": False,
    }
    value = schema_instance(schema)
    assert value == {"city": "Paris", "unit": "fahrenheit", "when": {"day": "2024-01-01"}}


def test_local_refs_and_defs_resolve() -> None:
    schema = {
        "$defs": {
            "Point": {
                "type": "object",
                "properties": {"x": {"type": "integer", "minimum": 3}},
                "required": ["x"],
            }
        },
        "type": "object",
        "properties": {"p": {"$ref": "#/$defs/Point"}},
        "required": ["p"],
    }
    value = schema_instance(schema)
    assert value == {"p": {"x": 3}}
    assert errors(value, schema) == []


def test_optional_type_list_prefers_the_non_null_type() -> None:
    assert schema_instance({"type": ["null", "integer"], "minimum": 7}) == 7
    assert schema_instance({"anyOf": [{"type": "null"}, {"type": "boolean"}]}) is True


def test_recursive_schema_terminates() -> None:
    schema = {
        "$defs": {"Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}}},
        "$ref": "#/$defs/Node",
    }
    value = schema_instance(schema)
    assert errors(value, schema) == []


def test_all_of_merges_properties_and_required() -> None:
    schema = {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
            {"properties": {"b": {"type": "boolean"}}, "required": ["b"]},
        ]
    }
    value = schema_instance(schema)
    assert value == {"a": 1, "b": True}
    assert errors(value, schema) == []
