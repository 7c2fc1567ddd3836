"""The stateful layer's own error answers."""

from __future__ import annotations

from typing import Final

from akgate.errors import GatewayError

__all__ = ["response_not_found", "store_unavailable"]

_RETRY_AFTER: Final = {"Retry-After": "1"}


def store_unavailable() -> GatewayError:
    """503: the request needs the store and the store cannot answer (never a 401 or a 500)."""
    return GatewayError(
        "service_unavailable",
        "The response store is unavailable; retry shortly (requests with store: false and "
        "no previous_response_id or item references do not need it).",
        headers=_RETRY_AFTER,
    )


def response_not_found(response_id: str) -> GatewayError:
    """404 for an unknown, expired, deleted or other workspace's response (all alike)."""
    return GatewayError("resource_not_found", f"Response with id '{response_id}' not found.")
