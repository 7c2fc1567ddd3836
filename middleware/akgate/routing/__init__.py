"""Routing: catalog, providers, strategies, stats, cost and ``routing_metadata``."""

from __future__ import annotations

from ._catalog import Capabilities, Catalog, CatalogModel, CatalogProvider
from ._cost import compute_cost
from ._middleware import Routing
from ._providers import Provider
from ._stats import InMemoryStats, Perf, RedisStats, RoutingStats
from ._strategies import STRATEGY_WEIGHTS, split_suffix

__all__ = [
    "STRATEGY_WEIGHTS",
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
    "compute_cost",
    "split_suffix",
]
