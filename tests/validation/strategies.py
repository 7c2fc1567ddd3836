"""Hypothesis strategies for request bodies, built from the models' JSON schemas.

``valid_bodies(model)`` draws bodies that follow the schema (with the cross-field rules fixed up,
so they should pass); ``mutated_bodies(model)`` then breaks one place: wrong types, out-of-range
numbers, nulls, deep nesting, huge or odd unicode strings, deleted or unknown keys.
"""

from __future__ import annotations

import re
import string
from functools import cache
from typing import Any

from hypothesis import strategies as st
from pydantic import BaseModel

KEYS = st.text(string.ascii_letters + "_", min_size=1, max_size=8)
JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=8,
)


def _skip(option: dict[str, Any]) -> bool:
    # The catch-all variants of tagged unions (Any, Unknown*) are for invalid input only.
    return option == {} or option.get("$ref", "").split("/")[-1].startswith("Unknown")


def _number(schema: dict[str, Any], integer: bool) -> st.SearchStrategy[Any]:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if integer:
        low = None if low is None else int(low) + ("exclusiveMinimum" in schema)
        high = None if high is None else int(high) - ("exclusiveMaximum" in schema)
        return st.integers(low, high)
    return st.floats(
        low,
        high,
        exclude_min="exclusiveMinimum" in schema,
        exclude_max="exclusiveMaximum" in schema,
        allow_nan=False,
        allow_infinity=False,
    )


class SchemaStrategies:
    def __init__(self, model: type[BaseModel]) -> None:
        self.schema = model.model_json_schema()
        self.defs: dict[str, Any] = self.schema.get("$defs", {})

    def build(self, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
        if "$ref" in schema:
            return self.build(self.defs[schema["$ref"].split("/")[-1]])
        if "const" in schema:
            return st.just(schema["const"])
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        for key in ("oneOf", "anyOf"):
            if key in schema:
                return st.one_of([self.build(o) for o in schema[key] if not _skip(o)])
        kind = schema.get("type")
        if kind == "string":
            return st.text(
                min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 12), 12)
            )
        if kind in ("integer", "number"):
            return _number(schema, kind == "integer")
        if kind == "boolean":
            return st.booleans()
        if kind == "null":
            return st.none()
        if kind == "array":
            low = schema.get("minItems", 0)
            return st.lists(
                self.build(schema.get("items", {})),
                min_size=low,
                max_size=min(schema.get("maxItems", low + 3), low + 3),
            )
        if kind == "object":
            return self._object(schema)
        return JSON

    def _object(self, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
        properties: dict[str, Any] = schema.get("properties", {})
        if not properties:
            extra = schema.get("additionalProperties", {})
            values = JSON if extra in ({}, True) else self.build(extra)
            return st.dictionaries(KEYS, values, max_size=3)
        required = set(schema.get("required", ())) | {
            name for name, prop in properties.items() if "const" in prop
        }
        return st.fixed_dictionaries(
            {name: self.build(p) for name, p in properties.items() if name in required},
            optional={
                name: self.build(p) for name, p in properties.items() if name not in required
            },
        )

    def bodies(self) -> st.SearchStrategy[dict[str, Any]]:
        return self.build(self.schema).map(_fix_cross_field_rules)


def _fix_cross_field_rules(body: dict[str, Any]) -> dict[str, Any]:
    """Make a schema-valid body obey the rules a JSON schema cannot state."""
    body["model"] = "gpt-4o"
    for field in (
        "functions",
        "function_call",
        "store",
        "background",
        "previous_response_id",
        "conversation",
        "prompt",
    ):
        body.pop(field, None)
    gateway = body.get("gateway")
    if isinstance(gateway, dict):
        gateway.pop("models", None)
        routing = gateway.get("routing")
        if isinstance(routing, dict):
            routing.pop("only_platform", None)
            routing.pop("deadline_ms", None)
            if isinstance(routing.get("weights"), dict):
                routing["weights"]["cost"] = 1.0
    if isinstance(body.get("extensions"), dict):
        body["extensions"].pop("thinking", None)
    stack: list[Any] = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "input_image":
                node.pop("file_id", None)
                node["image_url"] = "https://example.com/a.png"
            if node.get("type") == "input_file":
                # Valid only with inline_files (off by default): a text part instead.
                node.clear()
                node.update({"type": "input_text", "text": "x"})
            if node.get("type") == "file" and isinstance(node.get("file"), dict):
                node["file"]["file_data"] = "data:text/plain;base64,eA=="  # one source needed
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return body


@cache
def valid_bodies(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    return SchemaStrategies(model).bodies()


def _deep(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=40),
    st.builds(lambda n: "\U0001f600\u202e\x00" * n, st.integers(1, 20)),
    st.just("x" * 200_000),
    st.integers(1, 400).map(_deep),
    st.just({}),
    st.just([]),
    JSON,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            out.extend(paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out.extend(paths(child, (*prefix, index)))
    return out


@st.composite
def mutated(draw: st.DrawFn, model: type[BaseModel]) -> dict[str, Any]:
    body = draw(valid_bodies(model))
    where = paths(body)
    for _ in range(draw(st.integers(1, 3))):
        if not where:
            break
        path = draw(st.sampled_from(where))
        parent: Any = body
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "replace", "delete", "unknown"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "unknown" and isinstance(parent, dict):
            parent[draw(KEYS)] = draw(JSON)
        else:
            parent[path[-1]] = draw(JUNK)
        where = paths(body)
    return body


_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def resolve(body: Any, param: str, *, allow_missing_leaf: bool) -> bool:
    """True if ``param`` (``a.b[0].c``) names a place in ``body``."""
    tokens: list[str | int] = [n if n else int(i) for n, i in _TOKEN.findall(param)]
    node = body
    for position, token in enumerate(tokens):
        last = position == len(tokens) - 1
        in_list = isinstance(token, int) and isinstance(node, list) and token < len(node)
        if in_list or (isinstance(token, str) and isinstance(node, dict) and token in node):
            node = node[token]
        else:
            return last and allow_missing_leaf and isinstance(node, (dict, list))
    return True
