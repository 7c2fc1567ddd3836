"""Names that left a module's public API, still importable from it with a ``DeprecationWarning``.

A name leaves a public module (``akgate.auth.hash_key``, ``akgate.providers.upstream``) with a
deprecation period: the old import keeps working, warns once per call site, and the changelog
says where the name went. ``deprecated_names`` builds the module ``__getattr__`` (PEP 562) that
does it.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["deprecated_names", "warn_moved_module"]


def deprecated_names(
    module: str,
    moved: Mapping[str, str | tuple[str, str]],
    *,
    instead: str = "",
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for names that left ``module``.

    ``moved``: name -> where it is now, ``"module"`` (relative to ``module``, or absolute) or
    ``"module:new_name"`` for a renamed one, or a pair (that, what to do instead) when the
    advice differs from ``instead``, the advice the warning gives by default. Nothing is
    cached on the module: each use warns (once per call site, by the default filters).
    """

    def __getattr__(name: str) -> Any:
        entry = moved.get(name)
        if entry is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        source, advice = (entry, instead) if isinstance(entry, str) else entry
        source, _, attr = source.partition(":")
        warnings.warn(
            f"{module}.{name} is deprecated and will be removed: {advice}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(source, module), attr or name)

    return __getattr__


def warn_moved_module(old: str, instead: str) -> None:
    """Warn that the module ``old`` was renamed (called from the shim left at its old path)."""
    warnings.warn(
        f"{old} is deprecated and will be removed: {instead}",
        DeprecationWarning,
        stacklevel=3,
    )
