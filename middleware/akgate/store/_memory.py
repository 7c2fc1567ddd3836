"""The in-process response store: one worker, nothing survives a restart (tests, demos)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ._base import (
    DEFAULT_MAX_RECORD_SIZE,
    DEFAULT_TTL,
    StoredResponse,
    check_size,
)

__all__ = ["MemoryResponseStore"]


class MemoryResponseStore:
    """Records in dicts of this process. Expired records read as not found; :meth:`prune`
    frees them (records are stored serialized, so a caller never shares a live object)."""

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL,
        max_record_size: int = DEFAULT_MAX_RECORD_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if ttl <= 0 or max_record_size <= 0:
            raise ValueError("ttl and max_record_size must be positive")
        self.ttl = ttl
        self.max_record_size = max_record_size
        self.clock = clock
        self._records: dict[tuple[str, str], tuple[float, bytes]] = {}
        #: (workspace, item id) -> (response id, item)
        self._items: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        self._events: dict[str, list[tuple[int, bytes]]] = {}
        self._cancels: set[str] = set()

    def __repr__(self) -> str:
        return "MemoryResponseStore()"

    def _live(self, workspace: str, response_id: str) -> StoredResponse | None:
        entry = self._records.get((workspace, response_id))
        if entry is None or entry[0] <= self.clock():
            return None
        return StoredResponse.from_json(entry[1])

    async def save(self, record: StoredResponse) -> None:
        self._save(record)

    def _save(self, record: StoredResponse) -> None:
        data = record.to_json()
        check_size(data, self.max_record_size)
        self._records[(record.workspace, record.id)] = (record.expires_at, data)
        for item in record.items():
            self._items[(record.workspace, item["id"])] = (record.id, item)

    async def load(self, workspace: str, response_id: str) -> StoredResponse | None:
        return self._live(workspace, response_id)

    async def update(
        self, workspace: str, record_id: str, change: Callable[[StoredResponse], bool]
    ) -> StoredResponse | None:
        # No await between the read and the write: nothing else runs in between.
        record = self._live(workspace, record_id)
        if record is None:
            return None
        before = {item["id"] for item in record.items()}
        if not change(record):
            return record
        self._save(record)
        for item_id in before - {item["id"] for item in record.items()}:
            if self._items.get((workspace, item_id), ("",))[0] == record_id:
                del self._items[(workspace, item_id)]
        return record

    async def load_many(
        self, workspace: str, response_ids: Sequence[str]
    ) -> list[StoredResponse | None]:
        return [self._live(workspace, rid) for rid in response_ids]

    async def delete(self, workspace: str, response_id: str) -> bool:
        record = self._live(workspace, response_id)
        self._records.pop((workspace, response_id), None)
        self._events.pop(response_id, None)
        self._cancels.discard(response_id)
        if record is None:
            return False
        for item in record.items():
            if self._items.get((workspace, item["id"]), ("",))[0] == response_id:
                del self._items[(workspace, item["id"])]
        return True

    async def find_items(
        self, workspace: str, item_ids: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for item_id in item_ids:
            entry = self._items.get((workspace, item_id))
            if entry is not None and self._live(workspace, entry[0]) is not None:
                found[item_id] = entry[1]
        return found

    async def append_events(self, response_id: str, events: Sequence[tuple[int, bytes]]) -> None:
        self._events.setdefault(response_id, []).extend(events)

    async def events_after(self, response_id: str, after: int) -> list[tuple[int, bytes]]:
        return [e for e in self._events.get(response_id, ()) if e[0] > after]

    async def request_cancel(self, response_id: str) -> None:
        self._cancels.add(response_id)

    async def cancel_requested(self, response_id: str) -> bool:
        return response_id in self._cancels

    async def prune(self) -> int:
        now = self.clock()
        expired = [key for key, (until, _) in self._records.items() if until <= now]
        for workspace, response_id in expired:
            await self.delete(workspace, response_id)
            self._records.pop((workspace, response_id), None)
        stale = [k for k, (rid, _) in self._items.items() if (k[0], rid) not in self._records]
        for key in stale:
            del self._items[key]
        return len(expired)

    async def aclose(self) -> None:
        return None
