"""Provider apps: the embedded demo model and the httpx upstream provider."""

from __future__ import annotations

from ._upstream import UpstreamProvider
from .demo import DEMO_MODELS, DemoModel

__all__ = ["DEMO_MODELS", "DemoModel", "UpstreamProvider"]
