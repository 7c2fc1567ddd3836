"""Names that left a module's public API, still importable from it with a ``DeprecationWarning``.

A name leaves a public module (``akgate.auth.hash_key``, ``akgate.providers.upstream``) with a
deprecation period: the old import keeps working, warns once per call site, and the changelog
says where the name went. ``deprecated_names`` builds the module ``__getattr__`` (PEP 562) that
does it; combine it with ``lazy_exports`` by trying that one first.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["deprecated_names", "warn_moved_module"]


def deprecated_names(
    module: str, moved: Mapping[str, str], *, instead: str
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for names that left ``module``.

    ``moved``: name -> the module that defines it now (relative to ``module``, or absolute);
    ``instead``: what to do instead, said in the warning.
    """

    def __getattr__(name: str) -> Any:
        source = moved.get(name)
        if source is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(
            f"{module}.{name} is deprecated and will be removed: {instead}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(source, module), name)

    return __getattr__


def warn_moved_module(old: str, instead: str) -> None:
    """Warn that the module ``old`` was renamed (called from the shim left at its old path)."""
    warnings.warn(
        f"{old} is deprecated and will be removed: {instead}",
        DeprecationWarning,
        stacklevel=3,
    )
