"""Framework helpers that need a framework import (``akgate.contrib.django``).

Each submodule is imported on its own, so ``import akgate`` never pulls a framework in.
"""

from __future__ import annotations

__all__: list[str] = []
