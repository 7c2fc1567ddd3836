"""Deprecated: renamed ``akgate.schemas.envelope`` (one ``errors`` module is enough: the error
registry, ``akgate.errors``).

Import the envelope types from ``akgate.schemas`` (or ``akgate.schemas.envelope``); this module
warns once and re-exports them, until it is removed.
"""

from __future__ import annotations

from akgate._deprecated import warn_moved_module

from .envelope import ErrorEnvelope, ErrorObject, ErrorType

__all__ = ["ErrorEnvelope", "ErrorObject", "ErrorType"]

warn_moved_module(__name__, "import ErrorEnvelope and ErrorObject from akgate.schemas")
