"""The request side of encrypted reasoning: open replayed blobs, seal returned reasoning."""

from __future__ import annotations

from typing import Any

from akgate.errors import GatewayError

from ._reasoning import InvalidReasoning, ReasoningKeyRing

__all__ = ["ENCRYPTED_INCLUDE", "open_blobs", "sealer", "wants_sealing"]

ENCRYPTED_INCLUDE = "reasoning.encrypted_content"


def wants_sealing(payload: dict[str, Any]) -> bool:
    include = payload.get("include")
    return isinstance(include, list) and ENCRYPTED_INCLUDE in include


def has_blobs(value: Any) -> bool:
    return isinstance(value, list) and any(
        isinstance(i, dict) and i.get("type") == "reasoning" and i.get("encrypted_content")
        for i in value
    )


def open_blobs(
    value: list[Any],
    keys: ReasoningKeyRing | None,
    *,
    workspace: str,
    model: str | None,
    strict: bool,
) -> tuple[list[Any], list[dict[str, Any]]]:
    """``value`` with each encrypted reasoning item opened into its text, and the items that
    could not be used (dropped, or a 400 ``invalid_encrypted_content`` when ``strict``)."""
    items: list[Any] = []
    removed: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        blob = item.get("encrypted_content") if isinstance(item, dict) else None
        if not blob or item.get("type") != "reasoning":
            items.append(item)
            continue
        try:
            if keys is None:
                raise InvalidReasoning("prefix_mismatch")
            text = keys.open(blob, workspace=workspace, model=model)
        except InvalidReasoning as exc:
            if strict:
                raise GatewayError(
                    "invalid_encrypted_content",
                    f"The encrypted content of input[{i}] could not be verified ({exc.reason}).",
                    f"input[{i}].encrypted_content",
                ) from None
            removed.append(
                {
                    "id": item.get("id"),
                    "type": "reasoning",
                    "action": "removed",
                    "reason": exc.reason,
                }
            )
            continue
        opened: dict[str, Any] = {
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": text}],
        }
        if isinstance(item.get("id"), str):
            opened["id"] = item["id"]
        items.append(opened)
    return items, removed


def sealer(keys: ReasoningKeyRing, *, workspace: str, model: str) -> Any:
    """A function that gives a reasoning item its ``encrypted_content`` (once per item id, so
    ``output_item.done`` and the terminal response carry the same value)."""
    sealed: dict[str, str] = {}

    def seal(item: dict[str, Any]) -> None:
        key = item.get("id")
        cached = sealed.get(key) if isinstance(key, str) else None
        if cached is None:
            texts = [
                part.get("text", "")
                for name in ("content", "summary")
                for part in item.get(name) or ()
                if isinstance(part, dict)
            ]
            cached = keys.seal("\n\n".join(t for t in texts if t), workspace=workspace, model=model)
            if isinstance(key, str):
                sealed[key] = cached
        item["encrypted_content"] = cached

    return seal
