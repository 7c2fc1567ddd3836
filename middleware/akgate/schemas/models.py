"""The model directory: ``GET /v1/models`` and ``GET /v1/models/{id}`` (docs/routing.md)."""

from __future__ import annotations

from typing import Literal

from ._base import ResponseModel

__all__ = ["ModelList", "ModelObject", "ModelProviderInfo"]


class ModelProviderInfo(ResponseModel):
    """One provider of a model: prices are USD per 1M tokens."""

    name: str
    input_price: float
    output_price: float
    data_policy: str | None = None


class ModelObject(ResponseModel):
    """One callable model (``owned_by`` is always ``"auriko"``)."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "auriko"
    context_window: int | None = None
    supported_endpoints: list[str] | None = None
    providers: list[ModelProviderInfo] | None = None


class ModelList(ResponseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]
    catalog_version: str | None = None
    catalog_age_seconds: float | None = None
