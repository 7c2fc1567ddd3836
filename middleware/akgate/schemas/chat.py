"""Chat Completions response types: the completion, the stream chunk and usage.

The request type lives in :mod:`akgate.schemas.chat_request`.
"""

from __future__ import annotations

from typing import Any, Literal

from ._base import ResponseModel
from .gateway import RoutingMetadata

__all__ = [
    "ChatChoice",
    "ChatChunkChoice",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatDelta",
    "ChatFunctionCall",
    "ChatMessage",
    "ChatToolCall",
    "ChatUsage",
    "CompletionTokensDetails",
    "FinishReason",
    "PromptTokensDetails",
]

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]


class PromptTokensDetails(ResponseModel):
    cached_tokens: int = 0
    cache_write_tokens: int | None = None
    text_tokens: int | None = None
    image_tokens: int | None = None
    audio_tokens: int | None = None


class CompletionTokensDetails(ResponseModel):
    reasoning_tokens: int = 0
    text_tokens: int | None = None
    image_tokens: int | None = None
    audio_tokens: int | None = None
    accepted_prediction_tokens: int | None = None
    rejected_prediction_tokens: int | None = None


class ChatUsage(ResponseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None


class ChatFunctionCall(ResponseModel):
    name: str
    arguments: str


class ChatToolCall(ResponseModel):
    id: str
    type: Literal["function"] = "function"
    function: ChatFunctionCall


class ChatMessage(ResponseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ChatToolCall] | None = None
    reasoning_content: str | None = None
    annotations: list[dict[str, Any]] | None = None


class ChatChoice(ResponseModel):
    index: int
    message: ChatMessage
    finish_reason: FinishReason | str | None
    logprobs: dict[str, Any] | None = None


class ChatCompletion(ResponseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: ChatUsage | None = None
    system_fingerprint: str | None = None
    routing_metadata: RoutingMetadata | None = None


class ChatDelta(ResponseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    reasoning_content: str | None = None


class ChatChunkChoice(ResponseModel):
    index: int
    delta: ChatDelta
    finish_reason: FinishReason | str | None = None
    logprobs: dict[str, Any] | None = None


class ChatCompletionChunk(ResponseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: ChatUsage | None = None
    routing_metadata: RoutingMetadata | None = None
