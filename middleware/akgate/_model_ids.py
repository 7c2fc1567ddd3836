"""Model id shortcuts (``model:<strategy>``), without pydantic: auth reads them on every request.

The strategies are the ``optimize`` values of the ``gateway`` object (see ``docs/routing.md``);
:mod:`akgate.schemas.gateway` re-exports these names, so the schema and auth share one list.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from typing import Final, Literal, get_args

__all__ = ["MODEL_SUFFIXES", "DataPolicy", "OptimizeStrategy", "split_model_suffix"]

OptimizeStrategy = Literal[
    "cost", "cost-focus", "ttft", "ttft-focus", "tps", "tps-focus", "balanced"
]
DataPolicy = Literal["none", "no_training", "zdr"]

#: The ``model:<strategy>`` shortcuts: the ``optimize`` strategies.
MODEL_SUFFIXES: Final = frozenset(get_args(OptimizeStrategy))


def split_model_suffix(
    model: str, suffixes: AbstractSet[str] = MODEL_SUFFIXES
) -> tuple[str, str | None]:
    """``"demo:cost"`` -> ``("demo", "cost")``. A suffix counts only when the id has exactly
    one colon and a non-empty base, so ``ft:gpt-4o:org:custom`` and ``llama3:8b`` stay whole."""
    base, sep, suffix = model.partition(":")
    if sep and base and suffix in suffixes:  # a suffix never holds a colon: one colon in all
        return base, suffix
    return model, None
