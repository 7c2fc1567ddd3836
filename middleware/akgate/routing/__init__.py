"""Routing: catalog, providers, strategies, stats, cost and ``routing_metadata``."""

from __future__ import annotations

from akgate._deprecated import deprecated_names as _deprecated_names

from ._catalog import Capabilities, Catalog, CatalogModel, Offering
from ._middleware import Routing
from ._providers import Provider
from ._stats import InMemoryStats, Perf, RedisStats, RoutingStats

__all__ = [
    "Capabilities",
    "Catalog",
    "CatalogModel",
    "InMemoryStats",
    "Offering",
    "Perf",
    "Provider",
    "RedisStats",
    "Routing",
    "RoutingStats",
]


# Old names: internals listed here before, and renamed ones; still importable, with a warning.
__getattr__ = _deprecated_names(
    __name__,
    instead="it is internal to akgate.routing (costs and strategies are in routing_metadata)",
    moved={
        "CatalogProvider": ("._catalog:Offering", "it is called Offering now"),
        "STRATEGY_WEIGHTS": "._strategies",
        "compute_cost": "._cost",
        "split_suffix": "._strategies",
    },
)
