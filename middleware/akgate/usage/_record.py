"""One usage record: what a finished request cost, in the shape the ledger stores."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Final

__all__ = ["RECORD_COLUMNS", "UsageRecord"]


@dataclass(slots=True)
class UsageRecord:
    """A finished request (chat or responses, JSON or streamed, success or failure).

    Treat it as read-only (it is not frozen only because a frozen dataclass costs four times as
    much to build, on every request).

    ``cost_usd`` is the ``routing_metadata.cost.usd`` the client received (0 when nothing was
    produced); ``estimated`` is true when the tokens were estimated from the streamed text
    because the stream ended before the provider reported its usage.
    """

    #: Epoch seconds when the request finished.
    ts: float
    request_id: str
    key_id: str
    workspace_id: str
    endpoint: str
    #: The model the client asked for (first of ``gateway.models`` for multi-model requests).
    model: str
    provider: str | None = None
    provider_model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    cache_savings_usd: float = 0.0
    ttft_ms: float | None = None
    duration_ms: float = 0.0
    #: The HTTP status the client got.
    status: int = 200
    #: The error code of a failed request (HTTP error or an error event mid-stream).
    error_code: str | None = None
    stream: bool = False
    client_disconnected: bool = False
    estimated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Column order of the ledger tables (the dataclass field order).
RECORD_COLUMNS: Final = tuple(f.name for f in fields(UsageRecord))
