"""Responses API wire types: the Response object, output items, usage and stream events.

These describe what a chat-backed bridge emits (docs/responses-mapping.md): every field a strict
consumer requires is required here too, so ``Model.model_validate(obj)`` is a conformance check.
The types are lenient about *extra* keys (``ResponseModel``), since a native upstream may add more.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ._base import ResponseModel
from .gateway import RoutingMetadata

__all__ = [
    "STREAM_EVENT_TYPES",
    "Annotation",
    "CustomToolCallItem",
    "FunctionCallItem",
    "IncompleteDetails",
    "InputTokensDetails",
    "Logprob",
    "MessageItem",
    "OutputItem",
    "OutputTextPart",
    "OutputTokensDetails",
    "ReasoningItem",
    "ReasoningTextPart",
    "RefusalPart",
    "Response",
    "ResponseError",
    "ResponseStatus",
    "ResponseStreamEvent",
    "ResponseUsage",
    "StreamContentPartEvent",
    "StreamCustomToolCallInputDeltaEvent",
    "StreamCustomToolCallInputDoneEvent",
    "StreamErrorEvent",
    "StreamFunctionCallArgumentsDeltaEvent",
    "StreamFunctionCallArgumentsDoneEvent",
    "StreamLifecycleEvent",
    "StreamOutputItemEvent",
    "StreamReasoningSummaryPartEvent",
    "StreamReasoningSummaryTextDeltaEvent",
    "StreamReasoningSummaryTextDoneEvent",
    "StreamReasoningTextDeltaEvent",
    "StreamReasoningTextDoneEvent",
    "StreamRefusalDeltaEvent",
    "StreamRefusalDoneEvent",
    "StreamTextAnnotationAddedEvent",
    "StreamTextDeltaEvent",
    "StreamTextDoneEvent",
    "SummaryTextPart",
]

ResponseStatus = Literal["completed", "failed", "in_progress", "cancelled", "queued", "incomplete"]
ItemStatus = Literal["in_progress", "completed", "incomplete"]


class InputTokensDetails(ResponseModel):
    cached_tokens: int
    cache_write_tokens: int


class OutputTokensDetails(ResponseModel):
    reasoning_tokens: int


class ResponseUsage(ResponseModel):
    """Usage with both details objects as integers (Codex, OR and openai-agents need them)."""

    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class TopLogprob(ResponseModel):
    token: str
    bytes: list[int] | None = None
    logprob: float


class Logprob(ResponseModel):
    token: str
    bytes: list[int] | None = None
    logprob: float
    top_logprobs: list[TopLogprob] = Field(default_factory=list)


class Annotation(ResponseModel):
    """A flat annotation (``url_citation{start_index, end_index, title, url}`` and others)."""

    type: str


class OutputTextPart(ResponseModel):
    type: Literal["output_text"]
    text: str
    annotations: list[Annotation]
    logprobs: list[Logprob]


class RefusalPart(ResponseModel):
    type: Literal["refusal"]
    refusal: str


class ReasoningTextPart(ResponseModel):
    type: Literal["reasoning_text"]
    text: str


class SummaryTextPart(ResponseModel):
    type: Literal["summary_text"]
    text: str


ContentPart = Annotated[OutputTextPart | RefusalPart, Field(discriminator="type")]


class MessageItem(ResponseModel):
    type: Literal["message"]
    id: str = Field(pattern=r"^msg_")
    status: ItemStatus
    role: Literal["assistant"]
    content: list[ContentPart]


class FunctionCallItem(ResponseModel):
    type: Literal["function_call"]
    id: str = Field(pattern=r"^fc_")
    call_id: str
    name: str
    arguments: str
    status: ItemStatus


class CustomToolCallItem(ResponseModel):
    type: Literal["custom_tool_call"]
    id: str = Field(pattern=r"^ctc_")
    call_id: str
    name: str
    input: str
    status: ItemStatus
    namespace: str | None = None


class ReasoningItem(ResponseModel):
    type: Literal["reasoning"]
    id: str = Field(pattern=r"^rs_")
    status: ItemStatus
    summary: list[SummaryTextPart]
    content: list[ReasoningTextPart] | None = None


OutputItem = Annotated[
    MessageItem | FunctionCallItem | CustomToolCallItem | ReasoningItem,
    Field(discriminator="type"),
]


class IncompleteDetails(ResponseModel):
    reason: Literal["max_output_tokens", "content_filter"]


class ResponseError(ResponseModel):
    """The registry error payload (the same as the stream's ``error`` event carries)."""

    code: str
    message: str
    type: str | None = None
    param: str | None = None
    doc_url: str | None = None
    provider: str | None = None
    suggestion: str | None = None


class Response(ResponseModel):
    """The Response object in its full shape (docs/responses-mapping.md, Response object)."""

    id: str = Field(pattern=r"^resp_")
    object: Literal["response"]
    created_at: int
    completed_at: int | None
    status: ResponseStatus
    error: ResponseError | None
    incomplete_details: IncompleteDetails | None
    model: str
    instructions: str | list[Any] | None
    previous_response_id: str | None
    output: list[OutputItem]
    parallel_tool_calls: bool
    tool_choice: str | dict[str, Any]
    tools: list[dict[str, Any]]
    temperature: float
    top_p: float
    presence_penalty: float
    frequency_penalty: float
    top_logprobs: int
    max_output_tokens: int | None
    max_tool_calls: int | None
    text: dict[str, Any]
    reasoning: dict[str, Any] | None
    truncation: str
    store: bool
    background: bool
    service_tier: str
    metadata: dict[str, Any]
    user: str | None = None
    safety_identifier: str | None
    prompt_cache_key: str | None
    usage: ResponseUsage | None
    output_text: str | None = None
    routing_metadata: RoutingMetadata | None = None


class _Event(ResponseModel):
    sequence_number: int = Field(ge=0)


class StreamLifecycleEvent(_Event):
    type: Literal[
        "response.created",
        "response.in_progress",
        "response.completed",
        "response.incomplete",
        "response.failed",
    ]
    response: Response


class StreamOutputItemEvent(_Event):
    type: Literal["response.output_item.added", "response.output_item.done"]
    output_index: int
    item: OutputItem


class StreamContentPartEvent(_Event):
    type: Literal["response.content_part.added", "response.content_part.done"]
    item_id: str
    output_index: int
    content_index: int
    part: Annotated[OutputTextPart | RefusalPart | ReasoningTextPart, Field(discriminator="type")]


class StreamTextDeltaEvent(_Event):
    type: Literal["response.output_text.delta"]
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[dict[str, Any]]


class StreamTextDoneEvent(_Event):
    type: Literal["response.output_text.done"]
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[Logprob]


class StreamTextAnnotationAddedEvent(_Event):
    type: Literal["response.output_text.annotation.added"]
    item_id: str
    output_index: int
    content_index: int
    annotation_index: int
    annotation: dict[str, Any]


class StreamRefusalDeltaEvent(_Event):
    type: Literal["response.refusal.delta"]
    item_id: str
    output_index: int
    content_index: int
    delta: str


class StreamRefusalDoneEvent(_Event):
    type: Literal["response.refusal.done"]
    item_id: str
    output_index: int
    content_index: int
    refusal: str


class StreamFunctionCallArgumentsDeltaEvent(_Event):
    type: Literal["response.function_call_arguments.delta"]
    item_id: str
    output_index: int
    delta: str


class StreamFunctionCallArgumentsDoneEvent(_Event):
    type: Literal["response.function_call_arguments.done"]
    item_id: str
    output_index: int
    arguments: str
    name: str


class StreamCustomToolCallInputDeltaEvent(_Event):
    type: Literal["response.custom_tool_call_input.delta"]
    item_id: str
    output_index: int
    delta: str


class StreamCustomToolCallInputDoneEvent(_Event):
    type: Literal["response.custom_tool_call_input.done"]
    item_id: str
    output_index: int
    input: str


class StreamReasoningSummaryPartEvent(_Event):
    type: Literal["response.reasoning_summary_part.added", "response.reasoning_summary_part.done"]
    item_id: str
    output_index: int
    summary_index: int
    part: SummaryTextPart


class StreamReasoningSummaryTextDeltaEvent(_Event):
    type: Literal["response.reasoning_summary_text.delta"]
    item_id: str
    output_index: int
    summary_index: int
    delta: str


class StreamReasoningSummaryTextDoneEvent(_Event):
    type: Literal["response.reasoning_summary_text.done"]
    item_id: str
    output_index: int
    summary_index: int
    text: str


class StreamReasoningTextDeltaEvent(_Event):
    type: Literal["response.reasoning_text.delta"]
    item_id: str
    output_index: int
    content_index: int
    delta: str


class StreamReasoningTextDoneEvent(_Event):
    type: Literal["response.reasoning_text.done"]
    item_id: str
    output_index: int
    content_index: int
    text: str


class _NestedError(ResponseModel):
    type: str
    code: str
    message: str
    param: str | None


class StreamErrorEvent(_Event):
    """The dual flat + nested error event (docs/errors.md, In streams)."""

    type: Literal["error"]
    code: str
    message: str
    param: str | None
    error: _NestedError


ResponseStreamEvent = Annotated[
    StreamLifecycleEvent
    | StreamOutputItemEvent
    | StreamContentPartEvent
    | StreamTextDeltaEvent
    | StreamTextDoneEvent
    | StreamTextAnnotationAddedEvent
    | StreamRefusalDeltaEvent
    | StreamRefusalDoneEvent
    | StreamFunctionCallArgumentsDeltaEvent
    | StreamFunctionCallArgumentsDoneEvent
    | StreamCustomToolCallInputDeltaEvent
    | StreamCustomToolCallInputDoneEvent
    | StreamReasoningSummaryPartEvent
    | StreamReasoningSummaryTextDeltaEvent
    | StreamReasoningSummaryTextDoneEvent
    | StreamReasoningTextDeltaEvent
    | StreamReasoningTextDoneEvent
    | StreamErrorEvent,
    Field(discriminator="type"),
]

#: Every event type the adapter can emit.
STREAM_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "response.created",
        "response.in_progress",
        "response.completed",
        "response.incomplete",
        "response.failed",
        "response.output_item.added",
        "response.output_item.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.output_text.delta",
        "response.output_text.done",
        "response.output_text.annotation.added",
        "response.refusal.delta",
        "response.refusal.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.custom_tool_call_input.delta",
        "response.custom_tool_call_input.done",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_part.done",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "error",
    }
)
