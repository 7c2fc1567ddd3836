"""Building a turn's input from stored state: ``previous_response_id`` chains and item references.

The chat app only sees a stateless request: the chain's items (each ancestor's own input, then its
output, oldest first), then the request's own input with every reference replaced by the stored
item. Items taken from the store are reduced to the fields the Responses input accepts, so
server-minted ids and output-only fields (``status``, ``annotations``, ``logprobs``) never travel
inward.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from akgate.adapter._response import new_id
from akgate.errors import GatewayError

from ._base import ResponseStore, StoredResponse

__all__ = [
    "expand_chain",
    "new_stored_id",
    "own_input_items",
    "references",
    "replay_item",
]

_ID_PREFIX: Final = {
    "message": "msg_",
    "function_call": "fc_",
    "function_call_output": "fco_",
    "reasoning": "rs_",
}
_TEXT_PARTS: Final = frozenset({"input_text", "output_text", "text", "summary_text"})


#: ``prefix`` + 32 hex digits that start with the time: the adapter's output item ids and the
#: store's own ids (responses, input items, conversations) are made alike, in one order.
new_stored_id = new_id


def not_found_previous(response_id: str, message: str | None = None) -> GatewayError:
    return GatewayError(
        "previous_response_not_found",
        message or f"Previous response with id '{response_id}' not found.",
        "previous_response_id",
    )


def _reference_id(item: Any) -> str | None:
    """The id an input item refers to, when it is a reference rather than a full item."""
    if not isinstance(item, dict):
        return None
    item_id = item.get("id")
    if not isinstance(item_id, str) or not item_id:
        return None
    kind = item.get("type")
    if kind == "item_reference" or item.keys() == {"id"}:
        return item_id
    if kind == "reasoning" and not item.get("encrypted_content") and not item.get("content"):
        summary = item.get("summary")
        if not summary:
            return item_id  # a reasoning shell: its text lives in the store
    return None


def references(items: Sequence[Any]) -> list[str]:
    """The ids of the reference items in ``items`` (in order, once each)."""
    return list(dict.fromkeys(r for r in map(_reference_id, items) if r is not None))


def own_input_items(
    value: Any, resolved: dict[str, dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[Any], list[str]]:
    """This request's input as ``(stored items, items for the inner app, dropped shell ids)``.

    Stored items have references resolved and every item an id; the inner items are the
    client's own items unchanged, with references replaced by the stored item's replay. A
    reasoning shell that is not stored is dropped (the turn goes on); a missing
    ``item_reference`` or bare ``{"id"}`` is a 404.
    """
    if isinstance(value, str):
        message = {"type": "message", "role": "user", "content": value}
        return [_with_id(dict(message))], [message], []
    if not isinstance(value, list):
        return [], [], []
    stored: list[dict[str, Any]] = []
    inner: list[Any] = []
    dropped: list[str] = []
    for i, item in enumerate(value):
        ref = _reference_id(item)
        if ref is not None:
            found = resolved.get(ref)
            if found is None:
                if item.get("type") == "reasoning":
                    dropped.append(ref)
                    continue
                raise GatewayError(
                    "resource_not_found",
                    f"Item with id '{ref}' not found.",
                    f"input[{i}]",
                    type_="invalid_request_error",
                )
            stored.append(dict(found))
            inner.append(replay_item(found))
        else:
            if isinstance(item, dict):
                stored.append(_with_id(dict(item)))
            inner.append(item)  # a non-object is named by the validation layer
    return stored, inner, dropped


def _with_id(item: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(item.get("id"), str):
        kind = item.get("type") or ("message" if "role" in item else None)
        item["id"] = new_stored_id(_ID_PREFIX.get(kind or "", "item_"))
    if item.get("type") is None and "role" in item:
        item["type"] = "message"
    return item


def _content(content: Any) -> Any:
    if not isinstance(content, list):
        return content
    parts = []
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in _TEXT_PARTS:
            parts.append({"type": kind, "text": part.get("text", "")})
        elif kind == "refusal":
            parts.append({"type": "refusal", "refusal": part.get("refusal", "")})
        else:
            parts.append({k: v for k, v in part.items() if v is not None})
    return parts


def replay_item(item: dict[str, Any]) -> dict[str, Any]:
    """A stored item as a stateless input item (the fields the Responses input takes)."""
    kind = item.get("type")
    if kind == "message":
        return {"type": "message", "role": item.get("role"), "content": _content(item["content"])}
    if kind == "function_call":
        return {
            "type": "function_call",
            "call_id": item.get("call_id"),
            "name": item.get("name"),
            "arguments": item.get("arguments", ""),
        }
    if kind == "function_call_output":
        return {
            "type": "function_call_output",
            "call_id": item.get("call_id"),
            "output": _content(item.get("output")),
        }
    if kind == "reasoning":
        replayed: dict[str, Any] = {"type": "reasoning", "summary": _content(item.get("summary"))}
        if item.get("content"):
            replayed["content"] = _content(item["content"])
        return replayed
    return {k: v for k, v in item.items() if k not in ("id", "status") and v is not None}


def history_items(records: Sequence[StoredResponse]) -> list[dict[str, Any]]:
    """The replayed items of a chain: each record's own input then its output, oldest first."""
    items: list[dict[str, Any]] = []
    for record in records:
        output = record.response.get("output")
        for item in (*record.input_items, *(output if isinstance(output, list) else ())):
            if isinstance(item, dict):
                items.append(replay_item(item))
    return items


async def expand_chain(
    store: ResponseStore, workspace: str, previous_id: str
) -> tuple[list[str], list[dict[str, Any]]]:
    """``(chain ids, replayed items)`` for a request that continues ``previous_id``.

    Two reads whatever the chain's length: the previous record, then all its ancestors at once.
    An unknown, expired, deleted or foreign id, or a chain with a hole, is a 400.
    """
    previous = await store.load(workspace, previous_id)
    if previous is None or previous.response.get("object") != "response":
        raise not_found_previous(previous_id)  # a conversation's id is not a response's
    ancestors = await store.load_many(workspace, previous.chain) if previous.chain else []
    records: list[StoredResponse] = []
    for ancestor in ancestors:
        if ancestor is None:
            raise not_found_previous(
                previous_id,
                f"Previous response with id '{previous_id}' continues a response that is no "
                "longer stored.",
            )
        records.append(ancestor)
    records.append(previous)
    return [*previous.chain, previous.id], history_items(records)
