"""Routing's configuration, computed once when the layer is built: the provider registry, the
ASGI app that serves each (provider, endpoint) pair, and every catalog model's routes."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from akgate._types import ASGIApp
from akgate.adapter import HostedTools, ResponsesAdapter
from akgate.messages import MessagesAdapter

from ._catalog import Catalog
from ._providers import Provider
from ._strategies import Route

__all__ = ["build_routes", "provider_apps", "provider_registry"]

#: Which app serves a provider's endpoint: ``(provider name, endpoint) -> app``.
ProviderApps = dict[tuple[str, str], ASGIApp]


def provider_registry(
    catalog: Catalog,
    app: ASGIApp,
    app_provider: str | Provider | None,
    providers: Iterable[Provider],
) -> dict[str, Provider]:
    """Every provider by name: the wrapped ``app`` (as ``app_provider``), the ``providers``
    given, and the embedded demo model when the catalog names ``demo`` and nobody defined it.
    A provider without an app gets the wrapped one. Duplicates, non-``Provider`` entries and
    catalog providers nobody configured are a ``ValueError``."""
    registry: dict[str, Provider] = {}
    listed: list[Provider] = []
    if isinstance(app_provider, str):
        listed.append(Provider(app_provider, app))
    elif isinstance(app_provider, Provider):
        listed.append(app_provider)
    listed.extend(providers)
    for provider in listed:
        if not isinstance(provider, Provider):
            raise ValueError(f"providers must be Provider objects, not {provider!r}")
        if provider.name in registry:
            raise ValueError(f"provider {provider.name!r} is defined twice")
        if provider.app is None:
            provider = dataclasses.replace(provider, app=app)
        registry[provider.name] = provider
    missing = catalog.provider_names() - registry.keys()
    if "demo" in missing:
        # The embedded demo model serves the default catalog out of the box.
        registry["demo"] = Provider.demo()
        missing.discard("demo")
    if missing:
        raise ValueError(f"catalog names providers that are not configured: {sorted(missing)}")
    return registry


def provider_apps(
    providers: Mapping[str, Provider],
    *,
    hosted_tools: HostedTools,
    inline_files: bool,
    messages_options: Mapping[str, Any],
) -> ProviderApps:
    """The app each provider serves each endpoint with: its own where it speaks the endpoint
    natively, else its chat app behind a ``ResponsesAdapter`` or a ``MessagesAdapter``."""
    apps: ProviderApps = {}
    for provider in providers.values():
        assert provider.app is not None
        if "chat_completions" in provider.endpoints:
            apps[(provider.name, "chat_completions")] = provider.app
        if "responses" in provider.endpoints:
            apps[(provider.name, "responses")] = provider.app
        else:
            apps[(provider.name, "responses")] = ResponsesAdapter(
                provider.app, hosted_tools=hosted_tools, inline_files=inline_files
            )
        if "messages" in provider.endpoints:
            apps[(provider.name, "messages")] = provider.app
        elif "chat_completions" in provider.endpoints:
            apps[(provider.name, "messages")] = MessagesAdapter(
                provider.app, **{"hosted_tools": hosted_tools, **messages_options}
            )
    return apps


def build_routes(
    catalog: Catalog, providers: Mapping[str, Provider], apps: ProviderApps
) -> dict[str, tuple[Route, ...]]:
    """Every catalog model's candidate routes, by canonical id, precomputed so that a request
    only filters and ranks them."""
    routes: dict[str, tuple[Route, ...]] = {}
    for model in catalog.models:
        entries = []
        for offering in model.providers:
            provider = providers[offering.name]
            served = set(offering.endpoints)
            if "chat_completions" in served:
                served.add("messages")  # through the Messages adapter
            endpoints = frozenset(e for e in served if (provider.name, e) in apps)
            entries.append(
                Route(
                    model=model,
                    offering=offering,
                    provider=provider,
                    provider_model_id=model.provider_model_id(offering),
                    data_policy=offering.data_policy or provider.data_policy,
                    endpoints=endpoints,
                    price=(offering.input_price + offering.output_price) / 2,
                    key=(provider.name, model.id),
                    metadata_head={
                        "provider": provider.name,
                        "provider_model_id": model.provider_model_id(offering),
                        "model_canonical": model.id,
                    },
                )
            )
        routes[model.id] = tuple(entries)
    return routes
