"""The response store protocol, its record type and its errors.

A store keeps, per workspace: response records (the Response object plus what chaining and
``input_items`` need), an index of every stored input and output item by id, the event log of
background streams, and cancel flags. Backends: :mod:`._memory`, :mod:`._sqlite`, :mod:`._redis`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, runtime_checkable

from pydantic_core import from_json, to_json

__all__ = [
    "DEFAULT_MAX_RECORD_SIZE",
    "DEFAULT_TTL",
    "ResponseStore",
    "ResponseStoreUnavailable",
    "ResponseTooLarge",
    "StoredResponse",
]

#: Stored responses live 30 days by default (OpenAI keeps them at least that long).
DEFAULT_TTL: Final = 30 * 24 * 3600.0
#: One record (Response object and its input items, serialized) is at most this large.
DEFAULT_MAX_RECORD_SIZE: Final = 16 * 1024 * 1024


class ResponseStoreUnavailable(Exception):
    """The backend cannot answer: requests that need it get 503, ``store:false`` ones go on."""


class ResponseTooLarge(ValueError):
    """A record is larger than the store's ``max_record_size``: it is not stored."""


@dataclass(slots=True)
class StoredResponse:
    """One stored response and what chaining, listing and background runs need of it."""

    id: str
    workspace: str
    #: The Response object as last seen (final, or the live state of a background run).
    response: dict[str, Any]
    #: This request's own input items (references resolved, every item with an id).
    input_items: list[dict[str, Any]] = field(default_factory=list)
    #: Ancestors along ``previous_response_id``, oldest first (this response excluded).
    chain: list[str] = field(default_factory=list)
    created_at: float = 0.0
    #: Epoch seconds after which the record reads as not found.
    expires_at: float = 0.0
    background: bool = False
    #: A background run created with ``stream: true``: its events are stored.
    stream: bool = False
    #: A running background run's worker renews this; past it the run is dead (``failed``).
    lease_until: float | None = None
    #: ``response`` already serialized (what the client receives): reused, not encoded again.
    #: Only valid while ``response`` is not changed; never stored itself.
    response_json: bytes | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> bytes:
        head = to_json(
            {
                "id": self.id,
                "workspace": self.workspace,
                "input_items": self.input_items,
                "chain": self.chain,
                "created_at": self.created_at,
                "expires_at": self.expires_at,
                "background": self.background,
                "stream": self.stream,
                "lease_until": self.lease_until,
            }
        )
        response = self.response_json if self.response_json is not None else to_json(self.response)
        return head[:-1] + b',"response":' + response + b"}"

    @classmethod
    def from_json(cls, data: bytes | str) -> StoredResponse:
        value = from_json(data)
        return cls(
            id=value["id"],
            workspace=value["workspace"],
            response=value["response"],
            input_items=value.get("input_items") or [],
            chain=value.get("chain") or [],
            created_at=float(value.get("created_at") or 0.0),
            expires_at=float(value.get("expires_at") or 0.0),
            background=bool(value.get("background")),
            stream=bool(value.get("stream")),
            lease_until=value.get("lease_until"),
        )

    def items(self) -> list[dict[str, Any]]:
        """Every input and output item that carries an id (what item references resolve to)."""
        output = self.response.get("output")
        items = [*self.input_items, *(output if isinstance(output, list) else ())]
        return [i for i in items if isinstance(i, dict) and isinstance(i.get("id"), str)]


@runtime_checkable
class ResponseStore(Protocol):
    """What the stateful Responses layer needs of a backend (all methods are async).

    Every read takes the workspace: a record of another workspace reads as ``None``, exactly
    like an unknown or expired one. Failures raise :class:`ResponseStoreUnavailable`.
    """

    ttl: float
    max_record_size: int

    async def save(self, record: StoredResponse) -> None:
        """Insert or replace ``record`` and index its items (ResponseTooLarge above the bound)."""

    async def load(self, workspace: str, response_id: str) -> StoredResponse | None: ...

    async def update(
        self, workspace: str, record_id: str, change: Callable[[StoredResponse], bool]
    ) -> StoredResponse | None:
        """Read, change and write one record atomically: ``change`` edits the record in place
        and returns whether to write it. Concurrent updates of one record, from any worker,
        never lose each other's change. ``change`` may run more than once (a backend retries on
        a conflict), so it must only edit the record it is given, and must not block. Returns
        the record as written (or as read, when ``change`` returned False); ``None`` when there
        is no live record. Items the change removed leave the item index."""

    async def load_many(
        self, workspace: str, response_ids: Sequence[str]
    ) -> list[StoredResponse | None]:
        """The records for ``response_ids``, in order (one backend round trip)."""

    async def delete(self, workspace: str, response_id: str) -> bool:
        """Remove the record, its items and its events; False when there was none."""

    async def find_items(
        self, workspace: str, item_ids: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """The stored items among ``item_ids`` (missing ones are absent from the result)."""

    async def append_events(self, response_id: str, events: Sequence[tuple[int, bytes]]) -> None:
        """Add ``(sequence_number, SSE bytes)`` to a background stream's event log."""

    async def events_after(self, response_id: str, after: int) -> list[tuple[int, bytes]]:
        """The logged events with a sequence number greater than ``after``, in order."""

    async def request_cancel(self, response_id: str) -> None:
        """Flag a background run for cancellation (its worker may be another process)."""

    async def cancel_requested(self, response_id: str) -> bool: ...

    async def prune(self) -> int:
        """Delete expired records; returns how many (Redis expires keys by itself: 0)."""

    async def aclose(self) -> None: ...


def check_size(record: bytes, limit: int) -> None:
    if len(record) > limit:
        raise ResponseTooLarge(
            f"the response record is {len(record)} bytes, over the store's bound of {limit}"
        )
