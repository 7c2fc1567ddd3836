"""Deprecated: the module is now private, ``akgate.providers._demo``.

Import ``DemoModel`` from ``akgate.providers`` (or ``akgate``); this module warns once and
re-exports the names it had, until it is removed.
"""

from __future__ import annotations

from akgate._deprecated import warn_moved_module

from ._demo import (
    DEMO_MODELS,
    FAULT_HEADER,
    REFUSAL_TRIGGER,
    RESPONSES_ONLY_MODEL,
    DemoModel,
    Faults,
    count_tokens,
)

__all__ = [
    "DEMO_MODELS",
    "FAULT_HEADER",
    "REFUSAL_TRIGGER",
    "RESPONSES_ONLY_MODEL",
    "DemoModel",
    "Faults",
    "count_tokens",
]

warn_moved_module(__name__, "import DemoModel from akgate.providers (or akgate)")
