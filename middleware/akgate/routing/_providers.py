"""Provider definitions: a name, an ASGI app and the flags routing filters on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from akgate._types import ASGIApp
from akgate.context import Endpoint
from akgate.schemas.gateway import DataPolicy

__all__ = ["DATA_POLICY_RANK", "Provider"]

#: Stricter policies rank higher; a request asking for ``no_training`` accepts ``zdr`` too.
DATA_POLICY_RANK: Final = {"none": 0, "no_training": 1, "zdr": 2}


@dataclass(frozen=True)
class Provider:
    """A named backend that routing can call.

    ``app`` is any ASGI app serving ``/v1/chat/completions`` (and ``/v1/responses`` if listed in
    ``endpoints``, and ``/v1/messages`` if ``"messages"`` is listed); ``None`` means the app
    wrapped by :class:`~akgate.routing.Routing`. A chat-only provider is wrapped in
    :class:`akgate.adapter.ResponsesAdapter` for ``/v1/responses`` and in
    :class:`akgate.messages.MessagesAdapter` for ``/v1/messages``.
    """

    name: str
    app: ASGIApp | None = None
    #: Endpoints the app speaks natively.
    endpoints: frozenset[Endpoint] = frozenset({"chat_completions"})
    #: Serves requests made with ``ak_test_`` keys (see ``Routing(test_keys_use_test_providers)``).
    test: bool = False
    #: The provider runs on the customer's own key (``only_byok`` / ``only_platform``).
    byok: bool = False
    #: Default data policy of this provider's catalog entries.
    data_policy: DataPolicy = "none"
    #: Free-form extras (not used by routing).
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("Provider.name must not be empty")
        if self.data_policy not in DATA_POLICY_RANK:
            raise ValueError(f"Provider {self.name!r}: unknown data_policy {self.data_policy!r}")
        endpoints = frozenset(self.endpoints)
        if not endpoints or not endpoints <= {"chat_completions", "responses", "messages"}:
            raise ValueError(f"Provider {self.name!r}: invalid endpoints {sorted(endpoints)}")
        object.__setattr__(self, "endpoints", endpoints)

    @classmethod
    def demo(cls, name: str = "demo", **options: Any) -> Provider:
        """The embedded demo model (``akgate.providers.DemoModel``) as a test provider."""
        from akgate.providers._demo import DemoModel  # on use: routing alone needs no demo model

        app: ASGIApp = DemoModel(**options)
        return cls(name, app, test=True, data_policy="zdr")

    @classmethod
    def upstream(
        cls,
        name: str,
        base_url: str,
        *,
        endpoints: Iterable[Endpoint] = ("chat_completions",),
        test: bool = False,
        byok: bool = False,
        data_policy: DataPolicy = "none",
        **options: Any,
    ) -> Provider:
        """An OpenAI-compatible server at ``base_url`` through ``UpstreamProvider`` (httpx)."""
        from akgate.providers._upstream import UpstreamProvider  # on use: it imports httpx

        app: ASGIApp = UpstreamProvider(base_url, **options)
        return cls(
            name,
            app,
            endpoints=frozenset(endpoints),
            test=test,
            byok=byok,
            data_policy=data_policy,
        )
