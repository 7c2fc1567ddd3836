"""The Auriko ``gateway`` object and ``routing_metadata`` (docs/routing.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from akgate._model_ids import MODEL_SUFFIXES, DataPolicy, OptimizeStrategy, split_model_suffix

from ._base import RequestModel, ResponseModel

__all__ = [
    "MODEL_SUFFIXES",
    "CostInfo",
    "DataPolicy",
    "Extensions",
    "GatewayMetadata",
    "GatewayParams",
    "OptimizeStrategy",
    "RoutingMetadata",
    "RoutingOptions",
    "RoutingWeights",
    "StructuredWarning",
    "WarningType",
    "split_model_suffix",
]

WarningType = Literal[
    "unsupported_parameter",
    "unsupported_feature",
    "unsupported_field",
    "ignored_extension",
    "unknown_provider",
    "blocked_field",
    "provider_timeout",
]

#: At most this many entries in ``gateway.models``.
MAX_GATEWAY_MODELS = 10


class RoutingWeights(RequestModel):
    cost: float | None = Field(default=None, ge=0)
    ttft: float | None = Field(default=None, ge=0)
    throughput: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_positive(self) -> RoutingWeights:
        if not any(w for w in (self.cost, self.ttft, self.throughput) if w):
            raise PydanticCustomError(
                "invalid_parameter_value",
                "At least one of cost, ttft and throughput must be greater than 0.",
            )
        return self


class RoutingOptions(RequestModel):
    """``gateway.routing``: the 20 routing options with their constraints."""

    optimize: OptimizeStrategy | None = None
    weights: RoutingWeights | None = None
    max_cost_per_1m: float | None = Field(default=None, gt=0)
    max_ttft_ms: int | None = Field(default=None, gt=0)
    min_throughput_tps: float | None = Field(default=None, gt=0)
    ttft_percentile: Literal["p50", "p95"] | None = None
    throughput_percentile: Literal["p50", "p95"] | None = None
    providers: list[str] | None = None
    exclude_providers: list[str] | None = None
    prefer: str | None = None
    mode: Literal["pool", "fallback"] | None = None
    allow_fallbacks: bool | None = None
    max_fallback_attempts: int | None = Field(default=None, ge=1, le=19)
    timeout_ms: int | None = Field(default=None, gt=0)
    deadline_ms: int | None = Field(default=None, gt=0)
    data_policy: DataPolicy | None = None
    only_byok: bool | None = None
    only_platform: bool | None = None
    require_parameters: bool | None = None
    tier: str | None = None

    @model_validator(mode="after")
    def _cross_field(self) -> RoutingOptions:
        # The error context names the field, so the envelope's param points at it.
        if self.only_byok and self.only_platform:
            raise PydanticCustomError(
                "invalid_parameter_value",
                "only_byok and only_platform cannot both be true.",
                {"field": "only_platform"},
            )
        if (
            self.deadline_ms is not None
            and self.timeout_ms is not None
            and self.deadline_ms < self.timeout_ms
        ):
            raise PydanticCustomError(
                "invalid_parameter_value",
                "deadline_ms must be greater than or equal to timeout_ms.",
                {"field": "deadline_ms"},
            )
        return self


class GatewayMetadata(RequestModel):
    """``gateway.metadata``: exactly these four keys."""

    tags: list[str] | None = None
    user_id: str | None = None
    trace_id: str | None = None
    custom_fields: dict[str, str] | None = None


class GatewayParams(RequestModel):
    """The top-level ``gateway`` object, identical on both endpoints."""

    models: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None, min_length=1, max_length=MAX_GATEWAY_MODELS
    )
    routing: RoutingOptions | None = None
    metadata: GatewayMetadata | None = None


def _no_thinking(value: dict[str, dict[str, Any] | None]) -> dict[str, dict[str, Any] | None]:
    if "thinking" in value:
        raise PydanticCustomError(
            "invalid_parameter_value",
            "extensions.thinking is not supported. Use reasoning_effort at the top level instead.",
            {"field": "thinking"},
        )
    return value


#: ``extensions``: provider name -> object forwarded to that provider (docs/compatibility.md,
#: Contract §6).
Extensions = Annotated[dict[str, dict[str, Any] | None], AfterValidator(_no_thinking)]


class StructuredWarning(ResponseModel):
    type: WarningType | str
    code: str
    message: str


class CostInfo(ResponseModel):
    usd: float
    cache_savings_percent: int | None = None
    cache_savings_usd: float | None = None


class RoutingMetadata(ResponseModel):
    """``routing_metadata`` on every successful response (docs/routing.md, ``routing_metadata``)."""

    provider: str
    provider_model_id: str
    model_canonical: str
    routing_strategy: str
    cost: CostInfo | None = None
    ttft_ms: float | None = None
    throughput_tps: float | None = None
    warnings: list[StructuredWarning] | None = None
    tier: str | None = None
