"""A deterministic JSON instance for a JSON schema (tool arguments and structured output).

Covers what tool and ``response_format`` schemas use in practice: ``type`` (also as a list),
``properties``/``required``/``additionalProperties``, ``items``/``prefixItems`` with
``minItems``/``maxItems``, ``const`` (else ``default``, else ``examples[0]``, else ``enum[0]``),
string ``format``/``minLength``/``maxLength``, number bounds (inclusive, exclusive in both
drafts, ``multipleOf``), ``anyOf``/``oneOf``/``allOf`` and local ``$ref`` (``#/$defs/...``,
``#/definitions/...``). ``pattern`` is not honoured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["schema_instance"]

_FORMATS: Final[Mapping[str, str]] = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "12:00:00Z",
    "duration": "P1D",
    "email": "demo@example.com",
    "idn-email": "demo@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "uri": "https://example.com/demo",
    "url": "https://example.com/demo",
    "iri": "https://example.com/demo",
    "uri-reference": "https://example.com/demo",
    "uuid": "00000000-0000-4000-8000-000000000000",
}

#: Friendlier strings for common property names, so demo tool calls read naturally.
_HINTS: Final[Mapping[str, str]] = {
    "city": "Paris",
    "location": "Paris",
    "country": "France",
    "name": "demo",
    "query": "demo query",
    "q": "demo",
    "text": "demo text",
    "language": "en",
    "unit": "celsius",
    "timezone": "UTC",
}

_MAX_DEPTH: Final = 12
_TYPE_ORDER: Final = ("object", "string", "integer", "number", "boolean", "array", "null")


def schema_instance(schema: Any, *, name: str = "") -> Any:
    """A JSON value valid against ``schema`` (best effort for unsupported keywords)."""
    return _instance(schema, schema, name, 0)


def _resolve(root: Any, schema: Any, depth: int) -> Any:
    while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str) and depth < 32:
        ref: str = schema["$ref"]
        target: Any = root
        if ref != "#":
            if not ref.startswith("#/"):
                return {}
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(target, Mapping) or part not in target:
                    return {}
                target = target[part]
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **siblings} if siblings and isinstance(target, Mapping) else target
        depth += 1
    return schema


def _merge_all_of(root: Any, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema.get("allOf", ()):
        part = _resolve(root, part, depth)
        if not isinstance(part, Mapping):
            continue
        if "allOf" in part:
            part = _merge_all_of(root, part, depth + 1)
        for key, value in part.items():
            if key == "properties" and isinstance(value, Mapping):
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required" and isinstance(value, list):
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged


def _instance(root: Any, schema: Any, name: str, depth: int) -> Any:
    schema = _resolve(root, schema, depth)
    if schema is True or not isinstance(schema, Mapping):
        return _HINTS.get(name, "demo")
    if "allOf" in schema:
        schema = _merge_all_of(root, schema, depth)
    if "const" in schema:
        return schema["const"]
    if "default" in schema:
        return schema["default"]  # what the schema's author picked (even outside an enum)
    examples = schema.get("examples")
    if isinstance(examples, list) and examples:
        return examples[0]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            # The first branch that is not plain null reads best (`Optional[X]` -> an X).
            chosen = next(
                (b for b in branches if _resolve(root, b, depth) != {"type": "null"}), branches[0]
            )
            rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
            target = _resolve(root, chosen, depth)
            if isinstance(target, Mapping) and rest:
                target = {**rest, **target}
            return _instance(root, target, name, depth + 1)
    type_ = _pick_type(schema)
    if depth > _MAX_DEPTH and type_ in ("object", "array"):
        # Recursive schemas: stop with the smallest container the schema allows.
        return {} if type_ == "object" else []
    if type_ == "object":
        return _object(root, schema, depth)
    if type_ == "array":
        return _array(root, schema, name, depth)
    if type_ == "string":
        return _string(schema, name)
    if type_ in ("integer", "number"):
        return _number(schema, integer=type_ == "integer")
    if type_ == "boolean":
        return True
    return None


def _pick_type(schema: Mapping[str, Any]) -> str:
    declared = schema.get("type")
    if isinstance(declared, str):
        return declared
    if isinstance(declared, list) and declared:
        non_null = [t for t in declared if t != "null"]
        return str(min(non_null or declared, key=_type_rank))
    if "properties" in schema or "required" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
        return "number"
    return "string"


def _type_rank(type_: str) -> int:
    return _TYPE_ORDER.index(type_) if type_ in _TYPE_ORDER else len(_TYPE_ORDER)


def _object(root: Any, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    required = [r for r in schema.get("required") or () if isinstance(r, str)]
    names = list(dict.fromkeys([*required, *properties]))
    limit = schema.get("maxProperties")
    if isinstance(limit, int):
        names = names[: max(limit, len(required))]
    extra = schema.get("additionalProperties", True)
    result: dict[str, Any] = {}
    for key in names:
        if key in properties:
            result[key] = _instance(root, properties[key], key, depth + 1)
        else:
            result[key] = _instance(root, _extra_schema(extra), key, depth + 1)
    minimum = schema.get("minProperties")
    index = 0
    while isinstance(minimum, int) and len(result) < minimum and extra is not False:
        key = f"extra_{index}"
        index += 1
        if key not in result:
            result[key] = _instance(root, _extra_schema(extra), key, depth + 1)
    return result


def _array(root: Any, schema: Mapping[str, Any], name: str, depth: int) -> list[Any]:
    prefix = schema.get("prefixItems")
    items = schema.get("items", {})
    minimum = schema.get("minItems", 0)
    maximum = schema.get("maxItems")
    count = max(int(minimum), 1)
    if isinstance(maximum, int):
        count = min(count, maximum)
    result: list[Any] = []
    for index in range(count):
        if isinstance(prefix, list) and index < len(prefix):
            item_schema = prefix[index]
        elif isinstance(items, list):  # draft-4 tuple form
            item_schema = items[index] if index < len(items) else {}
        else:
            item_schema = items if items is not False else {}
        result.append(_instance(root, item_schema, name, depth + 1))
    return result


def _string(schema: Mapping[str, Any], name: str) -> str:
    format_ = schema.get("format")
    value = _FORMATS.get(format_, "") if isinstance(format_, str) else ""
    if not value:
        value = _HINTS.get(name, "demo")
    min_length = schema.get("minLength", 0)
    max_length = schema.get("maxLength")
    if isinstance(min_length, int) and len(value) < min_length:
        value = value + "x" * (min_length - len(value))
    if isinstance(max_length, int) and len(value) > max_length:
        value = value[:max_length]
    return value


def _number(schema: Mapping[str, Any], *, integer: bool) -> int | float:
    low, high = -math.inf, math.inf
    low_open = high_open = False
    minimum, maximum = _num(schema.get("minimum")), _num(schema.get("maximum"))
    ex_min, ex_max = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if minimum is not None:
        low, low_open = minimum, ex_min is True  # draft 4: a boolean modifier
    if maximum is not None:
        high, high_open = maximum, ex_max is True
    ex_low, ex_high = _num(ex_min), _num(ex_max)
    if ex_low is not None and ex_low >= low:
        low, low_open = ex_low, True
    if ex_high is not None and ex_high <= high:
        high, high_open = ex_high, True
    step = _num(schema.get("multipleOf"))
    if step is None or step <= 0:
        step = 1 if integer else None
    elif integer and not step.is_integer():
        step = None  # rare; the integer rounding below still applies

    def fits(value: float) -> bool:
        above = value > low or (not low_open and value == low)
        below = value < high or (not high_open and value == high)
        return above and below

    if step is not None:
        # The multiple of `step` closest to 1 inside the bounds.
        first = math.ceil(low / step) if math.isfinite(low) else 1
        last = math.floor(high / step) if math.isfinite(high) else first + 2
        start = min(max(round(1 / step), first), last)
        for k in (start, start + 1, start - 1, first, first + 1, last, last - 1):
            if fits(k * step):
                return _tidy(k * step, integer)
        return _tidy(start * step, integer)
    for candidate in (1.0, low, high):
        if math.isfinite(candidate) and fits(candidate):
            return _tidy(candidate, integer)
    if math.isfinite(low) and math.isfinite(high):
        return _tidy((low + high) / 2, integer)
    return _tidy(low + 1 if math.isfinite(low) else high - 1, integer)


def _tidy(value: float, integer: bool) -> int | float:
    if integer or (float(value).is_integer() and abs(value) < 2**53):
        return int(value)
    return value


def _num(value: Any) -> float | None:
    """``value`` as a finite number, or None (booleans are not numbers)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _extra_schema(extra: Any) -> Any:
    return extra if isinstance(extra, Mapping) else {}
