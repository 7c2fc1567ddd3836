"""The Chat Completions request (docs/compatibility.md, Contract §3), as strict pydantic models.

Unions are tagged with callable discriminators (by ``role``, by ``type`` or by JSON kind), so a
validation error points inside the variant the client meant
(``messages[3].content[0].image_url.url``) instead of listing every variant that failed. Tags
start with :data:`TAG` so that the error mapper can drop them from ``loc`` paths. Objects that
OpenAI defines are open (unknown keys ignored, since clients add vendor fields such as
``cache_control``); the top level and ``gateway`` are closed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, Union

from pydantic import AfterValidator, Discriminator, Field, Tag, create_model, model_validator
from pydantic_core import PydanticCustomError

from ._base import OpenRequestModel, RequestModel
from .gateway import Extensions, GatewayParams

__all__ = [
    "TAG",
    "AssistantMessage",
    "ChatCompletionRequest",
    "ChatContentPart",
    "ChatMessage",
    "ChatReasoning",
    "ChatResponseFormat",
    "ChatTool",
    "ChatToolCall",
    "DeveloperMessage",
    "FileContent",
    "FilePart",
    "FunctionDefinition",
    "FunctionMessage",
    "ImagePart",
    "ImageURL",
    "InputAudio",
    "InputAudioPart",
    "ReasoningEffort",
    "RefusalPart",
    "StreamOptions",
    "SystemMessage",
    "TextPart",
    "ToolMessage",
    "UserMessage",
    "by_kind",
    "rejected",
    "tagged",
]

#: Prefix of union tags: never a real key, dropped from error paths.
TAG: Final = "\x00"

_KIND_NAMES: Final = {"str": "a string", "list": "an array", "object": "an object"}


def rejected(code: str, message: str, field: str | None = None) -> Any:
    """A type that accepts nothing: validating it raises ``code`` (a registry error code)."""
    context = {"field": field} if field else None

    def fail(value: Any) -> Any:
        raise PydanticCustomError(code, message, context)

    return Annotated[Any, AfterValidator(fail)]


def _bad_key_model(key: str, what: str, allowed: str) -> type[OpenRequestModel]:
    # A one-field model: a missing key reports `missing` at `<path>.<key>`, a wrong one an
    # invalid value there, so the envelope's param names the discriminator itself.
    message = f"Unsupported {what} {key}; expected one of: {allowed}."
    field = (rejected("invalid_parameter_value", message), ...)
    return create_model(  # type: ignore[no-any-return,call-overload]
        f"Unknown{key.title()}", __base__=OpenRequestModel, **{key: field}
    )


def tagged(
    key: str,
    variants: Mapping[str, Any],
    *,
    what: str,
    infer: Callable[[dict[str, Any]], str | None] | None = None,
) -> Any:
    """A union of object ``variants`` chosen by the value of ``key`` (e.g. ``type``, ``role``).

    ``infer`` picks a variant for objects without ``key`` (Responses messages omit ``type``).
    """
    bad_key = TAG + "?key"
    not_object = TAG + "?object"
    tags = {name: TAG + name for name in variants}

    def discriminate(value: Any) -> str:
        if not isinstance(value, dict):
            return not_object
        name = value.get(key)
        if name is None and infer is not None:
            name = infer(value)
        if isinstance(name, str):
            return tags.get(name, bad_key)
        return bad_key

    choices: list[Any] = [Annotated[tp, Tag(tags[name])] for name, tp in variants.items()]
    choices.append(Annotated[_bad_key_model(key, what, ", ".join(variants)), Tag(bad_key)])
    choices.append(
        Annotated[
            rejected("invalid_parameter_value", f"Each {what} must be an object."), Tag(not_object)
        ]
    )
    return Annotated[Union[tuple(choices)], Discriminator(discriminate)]  # noqa: UP007


def by_kind(*, what: str, **variants: Any) -> Any:
    """A union chosen by JSON kind: ``str=``, ``list=`` and/or ``object=`` variants."""
    kinds: dict[str, type[Any]] = {"str": str, "list": list, "object": dict}
    checks = [(kinds[name], TAG + name) for name in variants]
    expected = " or ".join(_KIND_NAMES[name] for name in variants)
    other = TAG + "?kind"

    def discriminate(value: Any) -> str:
        for kind, tag in checks:
            if isinstance(value, kind):
                return tag
        return other

    choices: list[Any] = [Annotated[tp, Tag(TAG + name)] for name, tp in variants.items()]
    choices.append(
        Annotated[
            rejected("invalid_parameter_value", f"The {what} must be {expected}."), Tag(other)
        ]
    )
    return Annotated[Union[tuple(choices)], Discriminator(discriminate)]  # noqa: UP007


ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max", "off"]
Verbosity = Literal["low", "medium", "high"]
#: Seeds are 64-bit integers for every provider that takes one.
_INT64: Final = 2**63


# -- content parts ---------------------------------------------------------------------------


class CacheControl(OpenRequestModel):
    type: Literal["ephemeral"]
    ttl: str | None = None


class TextPart(OpenRequestModel):
    type: Literal["text"] = "text"
    text: str
    cache_control: CacheControl | None = None


class ImageURL(OpenRequestModel):
    url: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(OpenRequestModel):
    type: Literal["image_url"] = "image_url"
    image_url: ImageURL
    cache_control: CacheControl | None = None


class InputAudio(OpenRequestModel):
    data: str
    format: str


class InputAudioPart(OpenRequestModel):
    type: Literal["input_audio"] = "input_audio"
    input_audio: InputAudio


class FileContent(OpenRequestModel):
    """A file sent inline (``file_data``: a data URL or base64) or by a provider's ``file_id``."""

    file_data: str | None = Field(default=None, min_length=1)
    file_id: str | None = Field(default=None, min_length=1)
    filename: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> FileContent:
        if self.file_data is None and self.file_id is None:
            raise PydanticCustomError(
                "missing_required_parameter",
                "a file part needs file_data or file_id.",
                {"field": "file_data"},
            )
        return self


class FilePart(OpenRequestModel):
    type: Literal["file"] = "file"
    file: FileContent
    cache_control: CacheControl | None = None


class RefusalPart(OpenRequestModel):
    type: Literal["refusal"] = "refusal"
    refusal: str


if TYPE_CHECKING:
    ChatContentPart = TextPart | ImagePart | InputAudioPart | FilePart
    TextContent = str | list[TextPart]
    UserContent = str | list[ChatContentPart]
    AssistantContent = str | list[TextPart | RefusalPart]
else:
    ChatContentPart = tagged(
        "type",
        {"text": TextPart, "image_url": ImagePart, "input_audio": InputAudioPart, "file": FilePart},
        what="content part",
    )
    TextContent = by_kind(
        what="content",
        str=str,
        list=list[tagged("type", {"text": TextPart}, what="content part")],
    )
    UserContent = by_kind(what="content", str=str, list=list[ChatContentPart])
    AssistantContent = by_kind(
        what="content",
        str=str,
        list=list[tagged("type", {"text": TextPart, "refusal": RefusalPart}, what="content part")],
    )


# -- messages --------------------------------------------------------------------------------


class FunctionCallValue(OpenRequestModel):
    name: str
    arguments: str


class ChatToolCall(OpenRequestModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallValue


class SystemMessage(OpenRequestModel):
    role: Literal["system"] = "system"
    content: TextContent
    name: str | None = None


class DeveloperMessage(OpenRequestModel):
    role: Literal["developer"] = "developer"
    content: TextContent
    name: str | None = None


class UserMessage(OpenRequestModel):
    role: Literal["user"] = "user"
    content: UserContent
    name: str | None = None


class AssistantMessage(OpenRequestModel):
    """Empty assistant messages (``content`` null, ``""``, empty parts) are accepted."""

    role: Literal["assistant"] = "assistant"
    content: AssistantContent | None = None
    name: str | None = None
    refusal: str | None = None
    tool_calls: list[ChatToolCall] | None = None
    function_call: FunctionCallValue | None = None
    reasoning_content: str | None = None
    reasoning: list[dict[str, Any]] | None = None
    audio: dict[str, Any] | None = None


class ToolMessage(OpenRequestModel):
    role: Literal["tool"] = "tool"
    content: TextContent
    tool_call_id: str


class FunctionMessage(OpenRequestModel):
    """Deprecated ``function`` role, still forwarded as sent."""

    role: Literal["function"] = "function"
    content: str | None
    name: str


if TYPE_CHECKING:
    ChatMessage = (
        SystemMessage
        | DeveloperMessage
        | UserMessage
        | AssistantMessage
        | ToolMessage
        | FunctionMessage
    )
else:
    ChatMessage = tagged(
        "role",
        {
            "system": SystemMessage,
            "developer": DeveloperMessage,
            "user": UserMessage,
            "assistant": AssistantMessage,
            "tool": ToolMessage,
            "function": FunctionMessage,
        },
        what="message",
    )


# -- tools, tool_choice, response_format -------------------------------------------------------


class FunctionDefinition(OpenRequestModel):
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionTool(OpenRequestModel):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class NamedFunction(OpenRequestModel):
    name: str = Field(min_length=1)


class NamedToolChoice(OpenRequestModel):
    type: Literal["function"] = "function"
    function: NamedFunction


class AllowedTools(OpenRequestModel):
    mode: Literal["auto", "required"]
    tools: list[NamedToolChoice]


class AllowedToolsChoice(OpenRequestModel):
    type: Literal["allowed_tools"] = "allowed_tools"
    allowed_tools: AllowedTools


class JsonSchemaFormat(OpenRequestModel):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormatText(OpenRequestModel):
    type: Literal["text"] = "text"


class ResponseFormatJsonObject(OpenRequestModel):
    type: Literal["json_object"] = "json_object"


class ResponseFormatJsonSchema(OpenRequestModel):
    type: Literal["json_schema"] = "json_schema"
    json_schema: JsonSchemaFormat


if TYPE_CHECKING:
    ChatTool = FunctionTool
    ChatToolChoice = Literal["none", "auto", "required"] | NamedToolChoice | AllowedToolsChoice
    LegacyFunctionCall = Literal["none", "auto"] | NamedFunction
    ChatResponseFormat = ResponseFormatText | ResponseFormatJsonObject | ResponseFormatJsonSchema
    StopValue = str | list[str]
else:
    ChatTool = tagged("type", {"function": FunctionTool}, what="tool")
    ChatToolChoice = by_kind(
        what="tool_choice",
        str=Literal["none", "auto", "required"],
        object=tagged(
            "type",
            {"function": NamedToolChoice, "allowed_tools": AllowedToolsChoice},
            what="tool_choice",
        ),
    )
    LegacyFunctionCall = by_kind(
        what="function_call", str=Literal["none", "auto"], object=NamedFunction
    )
    ChatResponseFormat = tagged(
        "type",
        {
            "text": ResponseFormatText,
            "json_object": ResponseFormatJsonObject,
            "json_schema": ResponseFormatJsonSchema,
        },
        what="response_format",
    )
    StopValue = by_kind(what="stop value", str=str, list=list[str])


class StreamOptions(OpenRequestModel):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class ChatReasoning(OpenRequestModel):
    exclude: bool | None = None


# -- the request -----------------------------------------------------------------------------


class ChatCompletionRequest(RequestModel):
    """``POST /v1/chat/completions``: every field Auriko accepts, with its documented range.

    ``model`` xor ``gateway.models`` is checked by the validation layer before this model runs
    (so that the error names the field the client forgot).
    """

    model: str | None = Field(default=None, min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=1)
    min_p: float | None = Field(default=None, ge=0, le=1)
    top_a: float | None = Field(default=None, ge=0, le=1)
    repetition_penalty: float | None = Field(default=None, gt=0, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    n: int | None = Field(default=None, ge=1, le=10)
    seed: int | None = Field(default=None, ge=-_INT64, lt=_INT64)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: StopValue | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = None
    reasoning_effort: ReasoningEffort | None = None
    reasoning: ChatReasoning | None = None
    tools: list[ChatTool] | None = None
    tool_choice: ChatToolChoice | None = None
    parallel_tool_calls: bool | None = None
    functions: list[FunctionDefinition] | None = None
    function_call: LegacyFunctionCall | None = None
    response_format: ChatResponseFormat | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    web_search_options: dict[str, Any] | None = None
    verbosity: Verbosity | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    safety_identifier: str | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    service_tier: str | None = None
    gateway: GatewayParams | None = None
    extensions: Extensions | None = None

    @model_validator(mode="after")
    def _legacy_and_current(self) -> ChatCompletionRequest:
        # The deprecated forms are converted to tools/tool_choice: both at once is ambiguous.
        if self.functions is not None and self.tools is not None:
            raise PydanticCustomError(
                "invalid_parameter_value",
                "Send either tools or the deprecated functions, not both.",
                {"field": "functions"},
            )
        if self.function_call is not None and self.tool_choice is not None:
            raise PydanticCustomError(
                "invalid_parameter_value",
                "Send either tool_choice or the deprecated function_call, not both.",
                {"field": "function_call"},
            )
        return self
