"""Options of one :class:`~akgate.messages.MessagesAdapter`, shared by its mappers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["CountTokens", "HostedTools", "MessagesOptions", "ReasoningInput", "SystemMessages"]

#: What happens to tools and blocks the inner chat app cannot run (Anthropic server tools, MCP
#: servers, code-execution containers): ``"strict"`` refuses the request with a 400,
#: ``"lenient"`` drops them with a ``routing_metadata`` warning.
HostedTools = Literal["strict", "lenient"]
#: Where replayed ``thinking`` blocks go: dropped, or on the assistant message as
#: ``reasoning_content`` (DeepSeek, vLLM, SGLang) or ``reasoning``.
ReasoningInput = Literal["drop", "reasoning_content", "reasoning"]
#: ``role: "system"`` messages inside ``messages``: merged into the leading system message in
#: order (``"merge"``, what most chat templates need) or kept in place (``"keep"``).
SystemMessages = Literal["merge", "keep"]
#: ``count_tokens``: a local estimate, or the inner app's own ``prompt_tokens`` for the
#: translated request (one call with a 1-token answer).
CountTokens = Literal["estimate", "provider"]


@dataclass(frozen=True, slots=True)
class MessagesOptions:
    """Validated options (built once per adapter)."""

    hosted_tools: HostedTools = "strict"
    reasoning_input: ReasoningInput = "drop"
    max_tokens_field: Literal["max_completion_tokens", "max_tokens"] = "max_completion_tokens"
    system_messages: SystemMessages = "merge"
    #: ``thinking.budget_tokens`` below the first bound is ``low`` effort, below the second
    #: ``medium``, otherwise ``high``.
    effort_budgets: tuple[int, int] = (4096, 16384)
    #: Seconds of upstream silence before a ``ping`` event (``None``: no idle pings).
    ping_interval: float | None = 10.0
    count_tokens: CountTokens = "estimate"
