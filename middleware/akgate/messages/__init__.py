"""The Chat-to-Anthropic-Messages adapter: ``POST /v1/messages`` over an app that serves chat.

``MessagesAdapter(app)`` is the middleware; the mapping functions are public for layers that
translate without it. See ``docs/messages.md`` for the mapping tables.
"""

from __future__ import annotations

from ._count import estimate_tokens
from ._middleware import MessagesAdapter
from ._options import CountTokens, HostedTools, MessagesOptions, ReasoningInput, SystemMessages
from ._request import MessagesRequest, to_chat_request
from ._response import chat_to_message, map_usage, stop_reason
from ._stream import MessagesStreamTranslator, UpstreamStreamError

__all__ = [
    "CountTokens",
    "HostedTools",
    "MessagesAdapter",
    "MessagesOptions",
    "MessagesRequest",
    "MessagesStreamTranslator",
    "ReasoningInput",
    "SystemMessages",
    "UpstreamStreamError",
    "chat_to_message",
    "estimate_tokens",
    "map_usage",
    "stop_reason",
    "to_chat_request",
]
