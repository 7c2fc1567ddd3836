"""``GET /v1/models`` and ``GET /v1/models/{id}`` answered from the catalog (docs/routing.md).

A request with an ``anthropic-version`` header (the Anthropic SDKs send one on every call) also
gets Anthropic's ModelInfo fields (``type``, ``display_name``, ``created_at``) and list fields
(``first_id``, ``last_id``, ``has_more``) beside the OpenAI ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs

from akgate._asgi import get_header, send_json
from akgate._types import Scope, Send
from akgate.errors import GatewayError, send_error

from ._catalog import Catalog, CatalogModel
from ._providers import Provider
from ._strategies import split_suffix

__all__ = ["ModelDirectory"]

_LIST_PATHS = ("/v1/models", "/v1/models/")
_ENDPOINTS = ("chat_completions", "responses")
_PREFIX = "/v1/models/"


class ModelDirectory:
    """Precomputed model entries; serves list and retrieve requests."""

    def __init__(
        self,
        catalog: Catalog,
        providers: dict[str, Provider],
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.catalog = catalog
        self.wall_clock = wall_clock
        created = int(catalog.loaded_at)
        self._entries: dict[str, dict[str, Any]] = {}
        self._display = {m.id: m.display_name or m.id for m in catalog.models}
        for model in catalog.models:
            self._entries[model.id] = self._entry(model, providers, created)

    @staticmethod
    def _entry(model: CatalogModel, providers: dict[str, Provider], created: int) -> dict[str, Any]:
        windows = [p.context_window for p in model.providers if p.context_window]
        return {
            "id": model.id,
            "object": "model",
            "created": model.created if model.created is not None else created,
            "owned_by": "auriko",
            "context_window": max(windows) if windows else None,
            "supported_endpoints": list(model.endpoints),
            "providers": [
                {
                    "name": p.name,
                    "input_price": p.input_price,
                    "output_price": p.output_price,
                    "data_policy": p.data_policy
                    or (providers[p.name].data_policy if p.name in providers else None),
                    # Per provider, so a client can tell which one serves /v1/responses.
                    "supported_endpoints": [e for e in _ENDPOINTS if e in p.endpoints],
                }
                for p in model.providers
            ],
        }

    async def __call__(self, scope: Scope, path: str, send: Send) -> None:
        if scope.get("method") not in ("GET", "HEAD"):
            await send_error(
                send,
                GatewayError("method_not_allowed", "Use GET on the models endpoint."),
                headers=[(b"allow", b"GET, HEAD")],
            )
            return
        if path in _LIST_PATHS:
            await self._list(scope, send)
        else:
            # The server decoded the path once; decoding again would let '%2e%2e' become '..'.
            await self._retrieve(path[len(_PREFIX) :], send, _anthropic(scope))

    async def _list(self, scope: Scope, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        endpoint = (query.get("endpoint") or ["chat_completions"])[-1]
        if endpoint not in ("chat_completions", "responses"):
            await send_error(
                send,
                GatewayError(
                    "invalid_parameter_value",
                    "'endpoint' must be 'chat_completions' or 'responses'.",
                    "endpoint",
                ),
            )
            return
        data = [e for e in self._entries.values() if endpoint in e["supported_endpoints"]]
        listing: dict[str, Any] = {
            "object": "list",
            "data": data,
            "catalog_version": self.catalog.version,
            "catalog_age_seconds": max(0, int(self.wall_clock() - self.catalog.loaded_at)),
        }
        if _anthropic(scope):
            listing["data"] = [_anthropic_entry(e, self._display[e["id"]]) for e in data]
            listing["first_id"] = data[0]["id"] if data else None
            listing["last_id"] = data[-1]["id"] if data else None
            listing["has_more"] = False
        await send_json(send, 200, listing)

    async def _retrieve(self, name: str, send: Send, anthropic: bool = False) -> None:
        model = self.catalog.get(name) or self.catalog.get(split_suffix(name)[0])
        if model is None:
            await send_error(
                send,
                GatewayError(
                    "model_not_found",
                    f"Model '{name}' is not in the catalog. See GET /v1/models for the "
                    "current list.",
                    "model",
                ),
            )
            return
        entry = self._entries[model.id]
        if anthropic:
            entry = _anthropic_entry(entry, self._display[model.id])
        await send_json(send, 200, entry)


def _anthropic(scope: Scope) -> bool:
    return get_header(scope, b"anthropic-version") is not None


def _anthropic_entry(entry: dict[str, Any], display_name: str) -> dict[str, Any]:
    """An entry with Anthropic's ModelInfo fields added (``created_at`` in RFC 3339)."""
    created = datetime.fromtimestamp(entry["created"], timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        **entry,
        "type": "model",
        "display_name": display_name,
        "created_at": created,
        "lifecycle": "active",
    }
