"""Pydantic v2 wire types for the Auriko contract.

Requests (:class:`ChatCompletionRequest`, :class:`ResponsesRequest`, :class:`GatewayParams`)
validate strictly; response types are what the layers build their output from. The request-side
parts (messages, content parts, input items) stay in :mod:`akgate.schemas.chat_request` and
:mod:`akgate.schemas.responses_request`, whose names overlap with the response-side ones.
"""

from __future__ import annotations

from .chat import (
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatDelta,
    ChatUsage,
    CompletionTokensDetails,
    PromptTokensDetails,
)
from .chat_request import ChatCompletionRequest
from .errors import ErrorEnvelope, ErrorObject
from .gateway import (
    CostInfo,
    Extensions,
    GatewayMetadata,
    GatewayParams,
    RoutingMetadata,
    RoutingOptions,
    RoutingWeights,
    StructuredWarning,
)
from .models import ModelList, ModelObject, ModelProviderInfo
from .responses import (
    STREAM_EVENT_TYPES,
    FunctionCallItem,
    MessageItem,
    OutputItem,
    ReasoningItem,
    Response,
    ResponseStreamEvent,
    ResponseUsage,
)
from .responses_request import ResponsesRequest

__all__ = [
    "STREAM_EVENT_TYPES",
    "ChatChoice",
    "ChatChunkChoice",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatDelta",
    "ChatUsage",
    "CompletionTokensDetails",
    "CostInfo",
    "ErrorEnvelope",
    "ErrorObject",
    "Extensions",
    "FunctionCallItem",
    "GatewayMetadata",
    "GatewayParams",
    "MessageItem",
    "ModelList",
    "ModelObject",
    "ModelProviderInfo",
    "OutputItem",
    "PromptTokensDetails",
    "ReasoningItem",
    "Response",
    "ResponseStreamEvent",
    "ResponseUsage",
    "ResponsesRequest",
    "RoutingMetadata",
    "RoutingOptions",
    "RoutingWeights",
    "StructuredWarning",
]
