"""Provider apps: the embedded demo model and the httpx upstream provider."""

from __future__ import annotations

from .demo import DEMO_MODELS, DemoModel
from .upstream import UpstreamProvider

__all__ = ["DEMO_MODELS", "DemoModel", "UpstreamProvider"]
