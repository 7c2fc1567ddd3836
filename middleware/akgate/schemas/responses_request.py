"""The Responses request (docs/compatibility.md, Contract §4) as pydantic v2 models.

Lenient where clients differ (messages without ``type``, ``id`` or ``status`` are valid: some
SDKs replay output messages without them), strict on what a stateless gateway cannot serve:
``store: true``, ``previous_response_id``, ``background: true``, ``conversation``,
``item_reference`` and file or audio inputs fail with ``operation_not_allowed``. Inline files
(``input_file`` with ``file_data`` or ``file_url``) are accepted when the validation context says
``inline_files`` (``RequestValidation(inline_files=True)``); ``file_id`` never is.

Every tool and input item type of OpenAI's Responses API is known here. Function, ``custom`` and
``namespace`` tools are checked field by field; hosted tools (``web_search``, ``mcp``, ...) and
their items are accepted as objects of a known ``type``: a provider that serves ``/v1/responses``
natively gets them untouched, and the adapter applies its ``hosted_tools`` policy for chat-only
providers (see ``docs/validation-rules.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from pydantic import AfterValidator, Field, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from ._base import OpenRequestModel, RequestModel
from .chat_request import ReasoningEffort, Verbosity, by_kind, rejected, tagged
from .gateway import Extensions, GatewayParams

__all__ = [
    "HOSTED_ITEM_TYPES",
    "HOSTED_TOOL_TYPES",
    "CustomTool",
    "CustomToolCallItem",
    "CustomToolCallOutputItem",
    "FunctionCallItem",
    "FunctionCallOutputItem",
    "HostedItem",
    "HostedTool",
    "InputFile",
    "InputImage",
    "InputMessage",
    "InputText",
    "NamespaceTool",
    "OutputText",
    "ReasoningItem",
    "ResponsesFunctionTool",
    "ResponsesInputItem",
    "ResponsesReasoning",
    "ResponsesRequest",
    "ResponsesText",
    "ResponsesTool",
]

#: Tool types served only by OpenAI's own platform.
HOSTED_TOOL_TYPES: Final = (
    "web_search",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "web_search_2025_08_26",
    "file_search",
    "computer",
    "computer_use_preview",
    "code_interpreter",
    "image_generation",
    "mcp",
    "local_shell",
    "shell",
    "apply_patch",
    "tool_search",
    "computer_use",
    "programmatic_tool_calling",
)

#: Input item types produced by hosted tools.
HOSTED_ITEM_TYPES: Final = (
    "web_search_call",
    "file_search_call",
    "computer_call",
    "computer_call_output",
    "code_interpreter_call",
    "image_generation_call",
    "local_shell_call",
    "local_shell_call_output",
    "shell_call",
    "shell_call_output",
    "apply_patch_call",
    "apply_patch_call_output",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "mcp_call",
    "tool_search_call",
    "tool_search_output",
    "compaction",
    "compaction_trigger",
    "program",
    "program_output",
    "additional_tools",
    "configuration_update",
)

IncludeValue = Literal[
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
]

_STATELESS: Final = "Auriko's Responses endpoint is stateless"


def _not_allowed(what: str) -> Any:
    return rejected("operation_not_allowed", f"{_STATELESS}: {what} are not supported.")


if TYPE_CHECKING:
    HostedToolType = str
    HostedItemType = str
else:
    HostedToolType = Literal[HOSTED_TOOL_TYPES]
    HostedItemType = Literal[HOSTED_ITEM_TYPES]


class HostedTool(OpenRequestModel):
    """A hosted tool (``web_search``, ``mcp``, ...): checked by ``type`` only.

    Passed untouched to providers that serve ``/v1/responses`` natively; the adapter's
    ``hosted_tools`` policy decides for chat-only providers.
    """

    type: HostedToolType


class HostedItem(OpenRequestModel):
    """An input item of a hosted tool or of OpenAI's platform (``web_search_call``, ...)."""

    type: HostedItemType


# -- content parts ---------------------------------------------------------------------------


class InputText(OpenRequestModel):
    type: Literal["input_text"] = "input_text"
    text: str


class OutputText(OpenRequestModel):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[Any] | None = None


class RefusalContent(OpenRequestModel):
    type: Literal["refusal"] = "refusal"
    refusal: str


class InputImage(OpenRequestModel):
    type: Literal["input_image"] = "input_image"
    image_url: str | None = Field(default=None, min_length=1)
    file_id: str | None = None
    detail: Literal["low", "high", "auto", "original"] | None = None

    @model_validator(mode="after")
    def _by_url(self) -> InputImage:
        if self.file_id is not None:
            raise PydanticCustomError(
                "operation_not_allowed",
                f"{_STATELESS}: images by file_id are not supported; send image_url.",
                {"field": "file_id"},
            )
        if self.image_url is None:
            raise PydanticCustomError(
                "missing_required_parameter", "input_image needs image_url.", {"field": "image_url"}
            )
        return self


#: The validation-context key that lets inline files through (see ``InputFile``).
INLINE_FILES: Final = "inline_files"


class InputFile(OpenRequestModel):
    """A file part. Stateless content when inline (``file_data``, a data URL or base64, or a
    ``file_url``), so accepted when the validation context enables ``inline_files``; a
    ``file_id`` names a file uploaded earlier to a Files API this gateway does not have."""

    type: Literal["input_file"] = "input_file"
    file_data: str | None = Field(default=None, min_length=1)
    file_url: str | None = Field(default=None, min_length=1)
    file_id: str | None = None
    filename: str | None = None

    @model_validator(mode="after")
    def _inline(self, info: ValidationInfo) -> InputFile:
        context = info.context if isinstance(info.context, dict) else {}
        if not context.get(INLINE_FILES):
            raise PydanticCustomError(
                "operation_not_allowed", f"{_STATELESS}: file inputs are not supported."
            )
        if self.file_id is not None:
            raise PydanticCustomError(
                "operation_not_allowed",
                "files by file_id need a Files API, which this gateway does not have; send the "
                "file inline as file_data (a data URL).",
                {"field": "file_id"},
            )
        if self.file_data is None and self.file_url is None:
            raise PydanticCustomError(
                "missing_required_parameter",
                "input_file needs file_data or file_url.",
                {"field": "file_data"},
            )
        if self.file_data is not None and self.file_url is not None:
            raise PydanticCustomError(
                "invalid_parameter_value",
                "send either file_data or file_url, not both.",
                {"field": "file_url"},
            )
        if self.file_url is not None and not self.file_url.startswith(("https://", "http://")):
            raise PydanticCustomError(
                "invalid_parameter_value",
                "file_url must be an http(s) URL.",
                {"field": "file_url"},
            )
        return self


class SummaryText(OpenRequestModel):
    type: Literal["summary_text"] = "summary_text"
    text: str


if TYPE_CHECKING:
    MessagePart = InputText | InputImage | InputFile | OutputText | RefusalContent
    MessageContent = str | list[MessagePart]
    OutputContent = str | list[InputText | InputImage | InputFile]
else:
    _audio = _not_allowed("audio inputs")
    MessagePart = tagged(
        "type",
        {
            "input_text": InputText,
            "input_image": InputImage,
            "output_text": OutputText,
            "refusal": RefusalContent,
            "input_file": InputFile,
            "input_audio": _audio,
        },
        what="content part",
    )
    MessageContent = by_kind(what="content", str=str, list=list[MessagePart])
    OutputContent = by_kind(
        what="output",
        str=str,
        list=list[
            tagged(
                "type",
                {"input_text": InputText, "input_image": InputImage, "input_file": InputFile},
                what="output part",
            )
        ],
    )


# -- input items -----------------------------------------------------------------------------


class InputMessage(OpenRequestModel):
    """A message item; ``type``, ``id`` and ``status`` are optional (clients omit them)."""

    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: MessageContent
    id: str | None = None
    status: str | None = None


class FunctionCallItem(OpenRequestModel):
    type: Literal["function_call"] = "function_call"
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(OpenRequestModel):
    type: Literal["function_call_output"] = "function_call_output"
    call_id: str = Field(min_length=1)
    output: OutputContent
    id: str | None = None
    status: str | None = None


class CustomToolCallItem(OpenRequestModel):
    """A call of a ``custom`` tool, replayed: its free-text ``input`` instead of arguments."""

    type: Literal["custom_tool_call"] = "custom_tool_call"
    call_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    input: str
    namespace: str | None = None
    id: str | None = None
    status: str | None = None


class CustomToolCallOutputItem(OpenRequestModel):
    type: Literal["custom_tool_call_output"] = "custom_tool_call_output"
    call_id: str = Field(min_length=1)
    output: OutputContent
    id: str | None = None
    status: str | None = None


class ReasoningItem(OpenRequestModel):
    type: Literal["reasoning"] = "reasoning"
    id: str | None = None
    summary: list[SummaryText] | None = None
    content: list[dict[str, Any]] | None = None
    encrypted_content: str | None = None
    status: str | None = None


def _infer_item(item: dict[str, Any]) -> str | None:
    # EasyInputMessage: `type` is optional when `role` is present.
    return "message" if "role" in item else None


if TYPE_CHECKING:
    ResponsesInputItem = (
        InputMessage
        | FunctionCallItem
        | FunctionCallOutputItem
        | CustomToolCallItem
        | CustomToolCallOutputItem
        | ReasoningItem
        | HostedItem
    )
    ResponsesInput = str | list[ResponsesInputItem]
else:
    ResponsesInputItem = tagged(
        "type",
        {
            "message": InputMessage,
            "function_call": FunctionCallItem,
            "function_call_output": FunctionCallOutputItem,
            "custom_tool_call": CustomToolCallItem,
            "custom_tool_call_output": CustomToolCallOutputItem,
            "reasoning": ReasoningItem,
            "item_reference": _not_allowed("item references"),
            **dict.fromkeys(HOSTED_ITEM_TYPES, HostedItem),
        },
        what="input item",
        infer=_infer_item,
    )
    ResponsesInput = by_kind(what="input", str=str, list=list[ResponsesInputItem])


# -- tools, tool_choice, text, reasoning -------------------------------------------------------


class ResponsesFunctionTool(OpenRequestModel):
    """The flat function tool: ``{type, name, description, parameters, strict}``."""

    type: Literal["function"] = "function"
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class CustomToolFormatText(OpenRequestModel):
    type: Literal["text"] = "text"


class CustomToolFormatGrammar(OpenRequestModel):
    type: Literal["grammar"] = "grammar"
    syntax: Literal["lark", "regex"]
    definition: str


if TYPE_CHECKING:
    CustomToolFormat = CustomToolFormatText | CustomToolFormatGrammar
else:
    CustomToolFormat = tagged(
        "type",
        {"text": CustomToolFormatText, "grammar": CustomToolFormatGrammar},
        what="custom tool format",
    )


class CustomTool(OpenRequestModel):
    """A free-text tool (``input`` is a string, optionally constrained by a grammar)."""

    type: Literal["custom"] = "custom"
    name: str = Field(min_length=1)
    description: str | None = None
    format: CustomToolFormat | None = None


if TYPE_CHECKING:
    NamespaceMember = ResponsesFunctionTool | CustomTool
else:
    NamespaceMember = tagged(
        "type", {"function": ResponsesFunctionTool, "custom": CustomTool}, what="namespace tool"
    )


class NamespaceTool(OpenRequestModel):
    """Function and custom tools grouped under one name (calls carry ``namespace``)."""

    type: Literal["namespace"] = "namespace"
    name: str = Field(min_length=1)
    description: str | None = None
    tools: list[NamespaceMember] = Field(min_length=1)


class FunctionToolChoice(OpenRequestModel):
    type: Literal["function"] = "function"
    name: str = Field(min_length=1)


class CustomToolChoice(OpenRequestModel):
    type: Literal["custom"] = "custom"
    name: str = Field(min_length=1)


if TYPE_CHECKING:
    ToolRef = FunctionToolChoice | CustomToolChoice | HostedTool
else:
    ToolRef = tagged(
        "type",
        {
            "function": FunctionToolChoice,
            "custom": CustomToolChoice,
            **dict.fromkeys(HOSTED_TOOL_TYPES, HostedTool),
        },
        what="allowed tool",
    )


class AllowedToolsChoice(OpenRequestModel):
    type: Literal["allowed_tools"] = "allowed_tools"
    mode: Literal["auto", "required"]
    tools: list[ToolRef]


class TextFormatText(OpenRequestModel):
    type: Literal["text"] = "text"


class TextFormatJsonObject(OpenRequestModel):
    type: Literal["json_object"] = "json_object"


class TextFormatJsonSchema(OpenRequestModel):
    type: Literal["json_schema"] = "json_schema"
    name: str = Field(min_length=1, max_length=64)
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


if TYPE_CHECKING:
    ResponsesTool = ResponsesFunctionTool | CustomTool | NamespaceTool | HostedTool
    ResponsesToolChoice = (
        Literal["none", "auto", "required"]
        | FunctionToolChoice
        | CustomToolChoice
        | AllowedToolsChoice
        | HostedTool
    )
    TextFormat = TextFormatText | TextFormatJsonObject | TextFormatJsonSchema
else:
    ResponsesTool = tagged(
        "type",
        {
            "function": ResponsesFunctionTool,
            "custom": CustomTool,
            "namespace": NamespaceTool,
            **dict.fromkeys(HOSTED_TOOL_TYPES, HostedTool),
        },
        what="tool",
    )
    ResponsesToolChoice = by_kind(
        what="tool_choice",
        str=Literal["none", "auto", "required"],
        object=tagged(
            "type",
            {
                "function": FunctionToolChoice,
                "custom": CustomToolChoice,
                "allowed_tools": AllowedToolsChoice,
                **dict.fromkeys(HOSTED_TOOL_TYPES, HostedTool),
            },
            what="tool_choice",
        ),
    )
    TextFormat = tagged(
        "type",
        {
            "text": TextFormatText,
            "json_object": TextFormatJsonObject,
            "json_schema": TextFormatJsonSchema,
        },
        what="text.format",
    )


class ResponsesText(OpenRequestModel):
    format: TextFormat | None = None
    verbosity: Verbosity | None = None


ReasoningSummary = Literal["auto", "concise", "detailed"]
#: OpenAI's processing tiers (the Response echoes the one the provider used when it says so).
ServiceTier = Literal["auto", "default", "flex", "priority"]


class ResponsesReasoning(OpenRequestModel):
    effort: ReasoningEffort | None = None
    summary: ReasoningSummary | None = None
    #: Deprecated alias of ``summary`` (normalized to ``summary`` by the validation layer).
    generate_summary: ReasoningSummary | None = None


class ResponsesStreamOptions(OpenRequestModel):
    include_obfuscation: bool | None = None


# Platform options of OpenAI's Responses API with no chat equivalent: checked for shape here,
# and what the adapter does with each is listed in docs/validation-rules.md.


class AccessPrograms(OpenRequestModel):
    cyber: Literal["standard", "daybreak_blue", "daybreak_red"] | None = None


class BackgroundOptions(OpenRequestModel):
    completion_window: Literal["soonest", "2h", "8h"] | None = None
    continuation_id: str | None = None


class ContextManagement(OpenRequestModel):
    type: str = Field(min_length=1)
    compact_threshold: int | None = Field(default=None, ge=1)


class ImageOptions(OpenRequestModel):
    context_compression: Literal["auto", "enabled", "disabled"] | None = None


class ModerationMode(OpenRequestModel):
    mode: Literal["score", "block"]


class ModerationPolicy(OpenRequestModel):
    input: ModerationMode | None = None
    output: ModerationMode | None = None


class Moderation(OpenRequestModel):
    model: str = Field(min_length=1)
    policy: ModerationPolicy | None = None


class PromptCacheOptions(OpenRequestModel):
    comparison_response_id: str | None = None
    mode: Literal["implicit", "explicit"] | None = None
    prewarm: bool | None = None
    ttl: Literal["30m", "12h"] | None = None


def _not_true(field: str) -> Any:
    def check(value: bool | None) -> bool | None:
        if value:
            raise PydanticCustomError(
                "operation_not_allowed", f"{_STATELESS}: {field} must be false or omitted."
            )
        return value

    return AfterValidator(check)


def _null_only(what: str) -> Any:
    def check(value: Any) -> Any:
        if value is not None:
            raise PydanticCustomError("operation_not_allowed", f"{_STATELESS}: {what}.")
        return value

    return AfterValidator(check)


# -- the request -----------------------------------------------------------------------------


class ResponsesRequest(RequestModel):
    """``POST /v1/responses``: the fields a stateless Auriko-compatible gateway serves."""

    model: str | None = Field(default=None, min_length=1)
    input: ResponsesInput
    instructions: str | None = None
    tools: list[ResponsesTool] | None = None
    tool_choice: ResponsesToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = Field(default=None, ge=16)
    max_tool_calls: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=1)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    stream: bool | None = None
    stream_options: ResponsesStreamOptions | None = None
    text: ResponsesText | None = None
    reasoning: ResponsesReasoning | None = None
    truncation: Literal["auto", "disabled"] | None = None
    include: list[IncludeValue] | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = Field(default=None, max_length=64)
    prompt_cache_retention: str | None = None
    service_tier: ServiceTier | None = None
    store: Annotated[bool | None, _not_true("store")] = None
    background: Annotated[bool | None, _not_true("background")] = None
    previous_response_id: Annotated[
        str | None, _null_only("previous_response_id is not supported; send the full input")
    ] = None
    conversation: Annotated[
        Any, _null_only("conversation is not supported; send the full input")
    ] = None
    # Accepted and never forwarded to providers (Codex sends its thread and turn ids here).
    client_metadata: dict[str, Any] | None = None
    access_programs: AccessPrograms | None = None
    background_options: BackgroundOptions | None = None
    context_management: list[ContextManagement] | None = None
    image: ImageOptions | None = None
    moderation: Moderation | None = None
    prompt_cache_options: PromptCacheOptions | None = None
    #: Stored prompt templates live on OpenAI's platform: refused like the other stateful fields.
    prompt: Annotated[
        Any, _null_only("stored prompt templates are not supported; send instructions and input")
    ] = None
    gateway: GatewayParams | None = None
    extensions: Extensions | None = None
