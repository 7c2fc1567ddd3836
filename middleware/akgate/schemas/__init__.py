"""Pydantic v2 wire types for the Auriko contract.

Requests (:class:`ChatCompletionRequest`, :class:`ResponsesRequest`, :class:`GatewayParams`)
validate strictly; response types are what the layers build their output from. The request-side
parts (messages, content parts, input items) stay in :mod:`akgate.schemas.chat_request` and
:mod:`akgate.schemas.responses_request`, whose names overlap with the response-side ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from akgate._lazy import lazy_exports

if TYPE_CHECKING:
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
    from .envelope import ErrorEnvelope, ErrorObject
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

# Each layer imports the one schema module it needs (auth none, validation the two request
# models): the package imports a module on first use of one of its names (PEP 562).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ChatChoice": ".chat",
        "ChatChunkChoice": ".chat",
        "ChatCompletion": ".chat",
        "ChatCompletionChunk": ".chat",
        "ChatDelta": ".chat",
        "ChatUsage": ".chat",
        "CompletionTokensDetails": ".chat",
        "PromptTokensDetails": ".chat",
        "ChatCompletionRequest": ".chat_request",
        "ErrorEnvelope": ".envelope",
        "ErrorObject": ".envelope",
        "CostInfo": ".gateway",
        "Extensions": ".gateway",
        "GatewayMetadata": ".gateway",
        "GatewayParams": ".gateway",
        "RoutingMetadata": ".gateway",
        "RoutingOptions": ".gateway",
        "RoutingWeights": ".gateway",
        "StructuredWarning": ".gateway",
        "ModelList": ".models",
        "ModelObject": ".models",
        "ModelProviderInfo": ".models",
        "STREAM_EVENT_TYPES": ".responses",
        "FunctionCallItem": ".responses",
        "MessageItem": ".responses",
        "OutputItem": ".responses",
        "ReasoningItem": ".responses",
        "Response": ".responses",
        "ResponseStreamEvent": ".responses",
        "ResponseUsage": ".responses",
        "ResponsesRequest": ".responses_request",
    },
)

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
