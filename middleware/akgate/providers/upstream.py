"""Deprecated: the module is now private, ``akgate.providers._upstream``.

Import ``UpstreamProvider`` from ``akgate.providers`` (or ``akgate``); this module warns once and
re-exports it, until it is removed.
"""

from __future__ import annotations

from akgate._deprecated import warn_moved_module

from ._upstream import UpstreamProvider

__all__ = ["UpstreamProvider"]

warn_moved_module(__name__, "import UpstreamProvider from akgate.providers (or akgate)")
