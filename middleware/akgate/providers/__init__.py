"""Provider apps: the embedded demo model and the httpx upstream provider."""

from __future__ import annotations

from ._demo import DEMO_MODELS, DemoModel
from ._upstream import UpstreamProvider

__all__ = ["DEMO_MODELS", "DemoModel", "UpstreamProvider"]
