"""Checks every layer runs on its options at construction, so a bad option fails at start-up.

One rule per kind of option, the same in every layer (see ``docs/design.md``, "The layer shape"):
a body cap is a positive ``int``; a path starts with ``/``; a choice is one of the values of its
``Literal``. Options dataclasses call :func:`check_choices` from ``__post_init__`` and so validate
themselves, like httpx's ``Timeout`` and ``Limits``: the ``Literal`` is the only list of values.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Literal

__all__ = ["check_body_size", "check_choices", "check_path"]


def check_body_size(value: int, name: str = "max_body_size") -> int:
    """``value`` if it is a positive ``int`` (``bool`` is not a size), else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer")
    if value <= 0:
        raise ValueError(f"{name} must be positive")
    return value


def check_path(name: str, value: str) -> str:
    """``value`` if it is an absolute path (below ``root_path``), else ``ValueError``."""
    if not value.startswith("/"):
        raise ValueError(f"{name} must start with '/', not {value!r}")
    return value


#: Options class -> its ``Literal`` fields and their values (resolved once per class).
_LITERAL_FIELDS: dict[type[Any], tuple[tuple[str, tuple[Any, ...]], ...]] = {}


def _literal_fields(cls: type[Any]) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    fields = _LITERAL_FIELDS.get(cls)
    if fields is None:
        # The defining module's globals, not ``cls.__module__``: public classes report ``akgate``.
        hints = typing.get_type_hints(cls, globalns=cls.__post_init__.__globals__)
        fields = _LITERAL_FIELDS[cls] = tuple(
            (field.name, typing.get_args(hints[field.name]))
            for field in dataclasses.fields(cls)
            if typing.get_origin(hints[field.name]) is Literal
        )
    return fields


def check_choices(options: object) -> None:
    """Raise ``ValueError`` unless each ``Literal`` field of a dataclass holds one of its values."""
    for name, allowed in _literal_fields(type(options)):
        value = getattr(options, name)
        if value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
