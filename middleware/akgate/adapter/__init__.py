"""The Chat-to-Responses adapter: ``POST /v1/responses`` over an app that serves chat completions.

``ResponsesAdapter(app)`` is the middleware; the mapping functions are public for layers (such as
routing) that translate without the middleware.
"""

from __future__ import annotations

from ._middleware import ResponsesAdapter
from ._options import AdapterOptions, HostedTools, ReasoningEvents, ReasoningInput
from ._request import to_chat_request
from ._response import chat_to_response, map_usage
from ._stream import StreamTranslator, UpstreamStreamError

__all__ = [
    "AdapterOptions",
    "HostedTools",
    "ReasoningEvents",
    "ReasoningInput",
    "ResponsesAdapter",
    "StreamTranslator",
    "UpstreamStreamError",
    "chat_to_response",
    "map_usage",
    "to_chat_request",
]
