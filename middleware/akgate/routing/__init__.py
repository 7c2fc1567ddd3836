"""Routing: catalog, providers, strategies, stats, cost and ``routing_metadata``."""

from __future__ import annotations

from akgate._deprecated import deprecated_names as _deprecated_names

from ._catalog import Capabilities, Catalog, CatalogModel, CatalogProvider
from ._middleware import Routing
from ._providers import Provider
from ._stats import InMemoryStats, Perf, RedisStats, RoutingStats

__all__ = [
    "Capabilities",
    "Catalog",
    "CatalogModel",
    "CatalogProvider",
    "InMemoryStats",
    "Perf",
    "Provider",
    "RedisStats",
    "Routing",
    "RoutingStats",
]


# Internals that were listed here before: still importable from this package, with a warning.
__getattr__ = _deprecated_names(
    __name__,
    instead="it is internal to akgate.routing (costs and strategies are in routing_metadata)",
    moved={
        "STRATEGY_WEIGHTS": "._strategies",
        "compute_cost": "._cost",
        "split_suffix": "._strategies",
    },
)
