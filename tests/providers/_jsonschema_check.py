"""A small JSON-schema checker for the keywords the demo's instance generator supports."""

from __future__ import annotations

import math
import re
from typing import Any

_FORMAT_RES = {
    "date-time": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
    "date": r"\d{4}-\d\d-\d\d",
    "email": r"[^@\s]+@[^@\s]+\.[a-z]+",
    "uri": r"[a-z][a-z0-9+.-]*:\S+",
    "uuid": r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    "ipv4": r"(\d{1,3}\.){3}\d{1,3}",
}


def _is_type(value: Any, type_: str) -> bool:
    if type_ == "object":
        return isinstance(value, dict)
    if type_ == "array":
        return isinstance(value, list)
    if type_ == "string":
        return isinstance(value, str)
    if type_ == "boolean":
        return isinstance(value, bool)
    if type_ == "null":
        return value is None
    if type_ == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if type_ == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return False


def errors(value: Any, schema: Any, root: Any = None, path: str = "$") -> list[str]:
    """Every violation of ``schema`` by ``value`` (empty: valid)."""
    root = schema if root is None else root
    if schema is True or schema == {}:
        return []
    if schema is False:
        return [f"{path}: false schema"]
    out: list[str] = []
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"][2:].split("/"):
            if part:
                target = target[part]
        out += errors(value, target, root, path)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, t) for t in types):
            out.append(f"{path}: {value!r} is not of type {types}")
            return out
    if "const" in schema and value != schema["const"]:
        out.append(f"{path}: not the const")
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: {value!r} not in enum")
    for sub in schema.get("allOf", ()):
        out += errors(value, sub, root, path)
    if "anyOf" in schema and not any(not errors(value, s, root, path) for s in schema["anyOf"]):
        out.append(f"{path}: matches no anyOf branch")
    if "oneOf" in schema:
        matches = sum(1 for s in schema["oneOf"] if not errors(value, s, root, path))
        if matches != 1:
            out.append(f"{path}: matches {matches} oneOf branches")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", ()):
            if key not in value:
                out.append(f"{path}: missing {key}")
        for key, item in value.items():
            if key in props:
                out += errors(item, props[key], root, f"{path}.{key}")
            else:
                extra = schema.get("additionalProperties", True)
                out += errors(item, extra, root, f"{path}.{key}")
        if len(value) < schema.get("minProperties", 0):
            out.append(f"{path}: too few properties")
        if len(value) > schema.get("maxProperties", math.inf):
            out.append(f"{path}: too many properties")
    if isinstance(value, list):
        items = schema.get("items", {})
        prefix = schema.get("prefixItems", [])
        for index, item in enumerate(value):
            sub = prefix[index] if index < len(prefix) else items
            out += errors(item, sub, root, f"{path}[{index}]")
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", math.inf):
            out.append(f"{path}: wrong number of items")
    if isinstance(value, str):
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", math.inf):
            out.append(f"{path}: wrong length")
        pattern = _FORMAT_RES.get(schema.get("format", ""))
        if pattern and not re.fullmatch(pattern, value):
            out.append(f"{path}: {value!r} is not a {schema['format']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{path}: below minimum")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{path}: above maximum")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            out.append(f"{path}: not above exclusiveMinimum")
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            out.append(f"{path}: not below exclusiveMaximum")
        step = schema.get("multipleOf")
        if step:
            ratio = value / step
            if abs(ratio - round(ratio)) > 1e-9:
                out.append(f"{path}: not a multiple of {step}")
    return out
