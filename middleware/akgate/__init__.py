"""akgate: composable pure-ASGI middleware for Auriko-compatible LLM gateway endpoints."""

from __future__ import annotations

from ._version import __version__
from .context import Identity, RequestContext, get_context
from .errors import GatewayError

__all__ = [
    "GatewayError",
    "Identity",
    "RequestContext",
    "__version__",
    "get_context",
]
