"""The Conversations API (``/v1/conversations``) and the ``conversation`` parameter.

A conversation is a stored record like a response (same store, same workspace scoping and
retention) whose ``input_items`` are the conversation's items. A response made with
``conversation`` gets the conversation's items before its own input; once it ends
``completed`` or ``incomplete``, its input and output items are appended. Every change of a
conversation (append, item delete, metadata) is one atomic :meth:`ResponseStore.update`, so
concurrent appends from any number of workers are all kept, each as one contiguous block.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from akgate._asgi import ClientDisconnected, read_request_json, send_json
from akgate._types import Receive, Scope, Send
from akgate.context import RequestContext
from akgate.errors import GatewayError, send_error

from ._base import ResponseStoreUnavailable, ResponseTooLarge, StoredResponse
from ._errors import store_unavailable
from ._history import history_items, new_stored_id, own_input_items

if TYPE_CHECKING:
    from ._middleware import StatefulResponses

__all__ = ["Conversations"]

_MAX_ITEMS_PER_CALL: Final = 20
_MAX_METADATA: Final = 16


def _not_found(conversation_id: str, param: str | None = None) -> GatewayError:
    return GatewayError(
        "resource_not_found", f"Conversation with id '{conversation_id}' not found.", param
    )


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > _MAX_METADATA:
        raise GatewayError(
            "invalid_parameter_value",
            f"'metadata' must be an object of at most {_MAX_METADATA} string pairs.",
            "metadata",
        )
    for key, item in value.items():
        if not isinstance(item, str) or len(key) > 64 or len(item) > 512:
            raise GatewayError(
                "invalid_parameter_value",
                "'metadata' keys are at most 64 characters, values strings of at most 512.",
                "metadata",
            )
    return value


def _items(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > _MAX_ITEMS_PER_CALL:
        raise GatewayError(
            "invalid_parameter_value",
            f"'items' must be an array of at most {_MAX_ITEMS_PER_CALL} items.",
            "items",
        )
    stored, _, _ = own_input_items(value, {})
    for item in stored:
        if item.get("type") == "message":
            item.setdefault("status", "completed")
    return stored


class Conversations:
    """Conversations of one :class:`~akgate.store.StatefulResponses` layer."""

    def __init__(self, layer: StatefulResponses) -> None:
        self.layer = layer

    async def load(self, workspace: str, conversation_id: str) -> StoredResponse | None:
        record = await self.layer.store.load(workspace, conversation_id)
        if record is None or record.response.get("object") != "conversation":
            return None  # a response id is not a conversation
        return record

    async def history(self, workspace: str, conversation: Any) -> tuple[str, list[dict[str, Any]]]:
        """``(id, replayed items)`` for a request's ``conversation`` (an id or ``{"id"}``)."""
        conversation_id = conversation.get("id") if isinstance(conversation, dict) else conversation
        if not isinstance(conversation_id, str) or not conversation_id:
            raise GatewayError(
                "invalid_parameter_value",
                "'conversation' must be a conversation id or {\"id\": ...}.",
                "conversation",
            )
        record = await self.load(workspace, conversation_id)
        if record is None:
            raise _not_found(conversation_id, "conversation")
        return conversation_id, history_items([record])

    async def change(
        self, workspace: str, conversation_id: str, edit: Callable[[StoredResponse], bool]
    ) -> StoredResponse | None:
        """Apply ``edit`` to the conversation atomically; ``None`` when there is none."""

        def edit_conversation(record: StoredResponse) -> bool:
            return record.response.get("object") == "conversation" and edit(record)

        record = await self.layer.store.update(workspace, conversation_id, edit_conversation)
        if record is None or record.response.get("object") != "conversation":
            return None
        return record

    async def append(
        self, workspace: str, conversation_id: str, items: list[Any]
    ) -> StoredResponse | None:
        """Add items at the end (atomic: a concurrent append from any worker is never lost)."""
        added = [i for i in items if isinstance(i, dict)]

        def extend(record: StoredResponse) -> bool:
            record.input_items.extend(added)
            return True

        return await self.change(workspace, conversation_id, extend)

    # --- /v1/conversations[/{id}[/items[/{item_id}]]] -----------------------------------

    async def handle(
        self, scope: Scope, receive: Receive, send: Send, ctx: RequestContext, parts: list[str]
    ) -> None:
        from ._middleware import workspace_of

        method = scope.get("method", "GET")
        if method == "HEAD":
            method = "GET"
        allowed = {0: "POST", 1: "GET, POST, DELETE", 2: "GET, POST", 3: "GET, DELETE"}
        if len(parts) > 3 or (len(parts) >= 2 and parts[1] != "items"):
            await send_error(send, GatewayError("resource_not_found", "Unknown endpoint."))
            return
        if method not in allowed[len(parts)].split(", "):
            await send_error(
                send,
                GatewayError("method_not_allowed", f"Use {allowed[len(parts)]} on this endpoint."),
                headers=[(b"allow", allowed[len(parts)].encode())],
            )
            return
        workspace = workspace_of(ctx)
        try:
            body: dict[str, Any] = {}
            if method == "POST":
                body = await read_request_json(
                    scope, receive, ctx, max_size=self.layer.max_body_size
                )
            answer = await self._answer(workspace, method, parts, body, scope)
        except GatewayError as err:
            await send_error(send, err)
            return
        except ResponseStoreUnavailable:
            await send_error(send, store_unavailable())
            return
        except ResponseTooLarge:
            await send_error(
                send,
                GatewayError(
                    "invalid_parameter_value",
                    "The conversation would be larger than the store's bound for one record.",
                    "items",
                ),
            )
            return
        except ClientDisconnected:
            return
        await send_json(send, 200, answer)

    async def _answer(
        self, workspace: str, method: str, parts: list[str], body: dict[str, Any], scope: Scope
    ) -> Any:
        store = self.layer.store
        if not parts:
            now = time.time()
            conversation_id = new_stored_id("conv_")
            created = StoredResponse(
                id=conversation_id,
                workspace=workspace,
                response={
                    "id": conversation_id,
                    "object": "conversation",
                    "created_at": int(now),
                    "metadata": _metadata(body.get("metadata")),
                },
                input_items=_items(body.get("items")),
                created_at=now,
                expires_at=now + store.ttl,
            )
            await store.save(created)
            return created.response
        conversation_id = parts[0]
        record = await self.load(workspace, conversation_id)
        if record is None:
            raise _not_found(conversation_id)
        if len(parts) == 1:
            if method == "DELETE":
                await store.delete(workspace, conversation_id)
                return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}
            if method == "POST":
                if "metadata" not in body:
                    raise GatewayError(
                        "missing_required_parameter",
                        "Missing required parameter: 'metadata'.",
                        "metadata",
                    )
                metadata = _metadata(body["metadata"])

                def set_metadata(changed: StoredResponse) -> bool:
                    changed.response["metadata"] = metadata
                    return True

                updated = await self.change(workspace, conversation_id, set_metadata)
                if updated is None:
                    raise _not_found(conversation_id)  # deleted meanwhile
                return updated.response
            return record.response
        if len(parts) == 2:
            if method == "POST":
                added = _items(body.get("items"))
                if await self.append(workspace, conversation_id, added) is None:
                    raise _not_found(conversation_id)
                return _page(added, {"order": "asc", "limit": str(_MAX_ITEMS_PER_CALL)})
            from ._middleware import _query

            return _page(record.input_items, _query(scope))
        item_id = parts[2]
        if method == "DELETE":
            removed = False

            def remove(changed: StoredResponse) -> bool:
                nonlocal removed  # set by the attempt that is written (a retry runs it again)
                kept = [item for item in changed.input_items if item.get("id") != item_id]
                removed = len(kept) < len(changed.input_items)
                changed.input_items = kept
                return removed

            updated = await self.change(workspace, conversation_id, remove)
            if updated is None:
                raise _not_found(conversation_id)
            if not removed:
                raise _item_not_found(item_id)
            return updated.response
        for item in record.input_items:
            if item.get("id") == item_id:
                return item
        raise _item_not_found(item_id)


def _item_not_found(item_id: str) -> GatewayError:
    return GatewayError("resource_not_found", f"Item with id '{item_id}' not found.")


def _page(items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    from ._middleware import list_page

    return list_page(items, query)
