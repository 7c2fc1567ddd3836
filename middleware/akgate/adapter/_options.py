"""Adapter configuration shared by the request, response and stream mappers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from akgate._options import check_choices

__all__ = ["AdapterOptions", "HostedTools", "ReasoningEvents", "ReasoningInput"]

ReasoningEvents = Literal["summary", "reasoning_text"]
ReasoningInput = Literal["drop", "reasoning_content", "reasoning"]
#: What a chat-only upstream gets for hosted tools: a 400 (strict) or nothing, with a warning.
HostedTools = Literal["strict", "lenient"]


@dataclass(frozen=True, slots=True)
class AdapterOptions:
    """Validated options of one :class:`~akgate.adapter.ResponsesAdapter` (built once)."""

    reasoning_events: ReasoningEvents = "summary"
    reasoning_input: ReasoningInput = "drop"
    max_tokens_field: Literal["max_completion_tokens", "max_tokens"] = "max_completion_tokens"
    developer_role: Literal["developer", "system"] = "developer"
    send_done: bool = False
    hosted_tools: HostedTools = "strict"
    #: ``input_file`` parts sent inline (``file_data``) become chat ``file`` parts; ``False``:
    #: 400 ``operation_not_allowed`` (the stateless contract's answer).
    inline_files: bool = False

    def __post_init__(self) -> None:
        check_choices(self)
