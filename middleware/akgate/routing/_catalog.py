"""The model catalog: canonical models, aliases and each model's providers with prices.

A catalog is loaded from a Python mapping, a JSON file or a TOML file (TOML needs ``tomllib``,
i.e. Python >= 3.11; JSON and mappings work everywhere)::

    {"models": {"demo": {"aliases": ["demo-latest"],
                         "providers": [{"name": "demo", "input_price": 0.5, "output_price": 1.5}]}}}
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from akgate.context import Endpoint
from akgate.schemas.gateway import DataPolicy

__all__ = [
    "EFFORT_ORDER",
    "Capabilities",
    "Catalog",
    "CatalogModel",
    "CatalogProvider",
]

#: Reasoning effort levels from least to most effort (``off``/``none`` disable reasoning).
EFFORT_ORDER: Final = ("off", "none", "minimal", "low", "medium", "high", "xhigh", "max")

_ENDPOINTS: Final[tuple[Endpoint, ...]] = ("chat_completions", "responses")


class _Frozen(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, protected_namespaces=()
    )


class Capabilities(_Frozen):
    """What a model can do on one provider; requests needing more are routed elsewhere."""

    tools: bool = True
    #: Honours ``tool_choice: "required"`` (some providers treat it as ``auto``).
    tool_choice_required: bool = True
    vision: bool = False
    #: Reads file parts (chat ``file``, Responses ``input_file``, Messages PDF ``document``);
    #: a request with files is routed only to such providers (else 400 ``unsupported_modalities``).
    files: bool = False
    structured_output: bool = True
    reasoning: bool = False
    #: Effort levels the model accepts (others are normalised to the nearest one, with a
    #: warning). Include ``"off"`` if reasoning can be disabled. Empty with ``reasoning``: the
    #: default ``("low", "medium", "high")``.
    reasoning_efforts: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _efforts(self) -> Capabilities:
        for effort in self.reasoning_efforts:
            if effort not in EFFORT_ORDER:
                raise ValueError(f"unknown reasoning effort {effort!r}")
        if self.reasoning and not self.reasoning_efforts:
            object.__setattr__(self, "reasoning_efforts", ("low", "medium", "high"))
        return self


class CatalogProvider(_Frozen):
    """One provider serving a model: its model id, prices (USD per 1M tokens) and limits."""

    name: str = Field(min_length=1)
    #: The provider's own model id (defaults to the canonical id).
    model_id: str | None = None
    input_price: float = Field(ge=0)
    output_price: float = Field(ge=0)
    #: Price of cached input tokens (``None``: billed like other input tokens).
    cached_input_price: float | None = Field(default=None, ge=0)
    context_window: int | None = Field(default=None, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    endpoints: tuple[Endpoint, ...] = _ENDPOINTS
    capabilities: Capabilities = Capabilities()
    #: ``None``: the provider's default data policy.
    data_policy: DataPolicy | None = None
    #: Optional parameters this provider honours (``None``: all of them).
    supported_parameters: frozenset[str] | None = None
    #: Pricing tier name (reported as ``routing_metadata.tier``).
    tier: str | None = None
    #: Premium tiers are only used when the request names them in ``gateway.routing.tier``.
    premium: bool = False
    #: Priors used for scoring until real traffic has been observed.
    ttft_ms: float | None = Field(default=None, gt=0)
    throughput_tps: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _checks(self) -> CatalogProvider:
        if not self.endpoints:
            raise ValueError("endpoints must not be empty")
        return self


class CatalogModel(_Frozen):
    """A canonical model with its aliases and providers (in preference order)."""

    id: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()
    display_name: str | None = None
    #: Shown by ``/v1/directory/models`` and ``/v1/registry/models`` (default: the model id).
    family: str | None = None
    author: str | None = None
    #: Unix time shown as ``created`` in the model directory (default: catalog load time).
    created: int | None = None
    providers: tuple[CatalogProvider, ...] = Field(min_length=1)

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """Endpoints served by at least one provider, in canonical order."""
        return tuple(e for e in _ENDPOINTS if any(e in p.endpoints for p in self.providers))

    def provider_model_id(self, provider: CatalogProvider) -> str:
        return provider.model_id or self.id


class Catalog:
    """An immutable set of models, looked up by canonical id or alias."""

    __slots__ = ("_by_name", "loaded_at", "models", "version")

    def __init__(
        self,
        models: Iterable[CatalogModel],
        *,
        version: str | None = None,
        loaded_at: float | None = None,
    ) -> None:
        self.models: tuple[CatalogModel, ...] = tuple(models)
        self._by_name: dict[str, CatalogModel] = {}
        for model in self.models:
            for name in (model.id, *model.aliases):
                if name in self._by_name:
                    raise ValueError(f"catalog: model id or alias {name!r} is defined twice")
                self._by_name[name] = model
        self.version = version or self._digest()
        #: Unix time the catalog was loaded (``catalog_age_seconds`` counts from it).
        self.loaded_at = time.time() if loaded_at is None else loaded_at

    def __len__(self) -> int:
        return len(self.models)

    def __repr__(self) -> str:
        return f"Catalog({len(self.models)} models, version={self.version!r})"

    def get(self, name: str) -> CatalogModel | None:
        """The model whose id or alias is ``name``."""
        return self._by_name.get(name)

    def provider_names(self) -> set[str]:
        return {p.name for m in self.models for p in m.providers}

    def to_dict(self) -> dict[str, Any]:
        return {
            "models": {
                m.id: m.model_dump(mode="json", exclude={"id"}, exclude_defaults=True)
                for m in self.models
            }
        }

    def _digest(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True, default=sorted)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Catalog:
        """Build a catalog from ``{"models": {id: {...}}}`` or ``{"models": [{"id": ...}]}``."""
        if not isinstance(data, Mapping):
            raise ValueError("catalog: expected a mapping with a 'models' key")
        unknown = set(data) - {"models", "version"}
        if unknown:
            raise ValueError(f"catalog: unknown top-level keys {sorted(unknown)}")
        raw = data.get("models")
        entries: list[Any]
        if isinstance(raw, Mapping):
            entries = [{"id": key, **value} for key, value in raw.items()]
        elif isinstance(raw, list):
            entries = raw
        else:
            raise ValueError("catalog: 'models' must be a table/object or a list")
        models = []
        for entry in entries:
            try:
                models.append(CatalogModel.model_validate(entry))
            except ValidationError as exc:
                name = entry.get("id") if isinstance(entry, Mapping) else entry
                raise ValueError(f"catalog: invalid model {name!r}: {exc}") from None
        version = data.get("version")
        return cls(models, version=str(version) if version is not None else None)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Catalog:
        """Load a ``.json`` or ``.toml`` catalog file."""
        name = os.fspath(path)
        with open(name, "rb") as fh:
            content = fh.read()
        if name.endswith(".toml"):
            if sys.version_info >= (3, 11):
                import tomllib

                return cls.from_dict(tomllib.loads(content.decode("utf-8")))
            raise ValueError("catalog: TOML needs Python >= 3.11 (tomllib); use JSON")
        return cls.from_dict(json.loads(content))

    @classmethod
    def load(cls, source: Catalog | Mapping[str, Any] | str | os.PathLike[str] | None) -> Catalog:
        """A catalog from any accepted source (``None``: :meth:`demo`)."""
        if source is None:
            return cls.demo()
        if isinstance(source, Catalog):
            return source
        if isinstance(source, Mapping):
            return cls.from_dict(source)
        return cls.from_file(source)

    @classmethod
    def demo(cls, provider: str = "demo") -> Catalog:
        """The built-in catalog: ``demo``, ``demo-reasoning`` and the Responses-only
        ``demo-responses`` on the demo provider (``docs/providers.md`` says what each supports)."""
        return cls.from_dict(DEMO_CATALOG if provider == "demo" else _demo_for(provider))


#: What the demo model honours (``providers/demo.py``); routing drops the other optional
#: parameters with an ``unsupported_parameter`` warning. The demo is deterministic, which is what
#: ``temperature``, ``top_p`` and ``seed`` ask of it; the penalties are no-ops
#: for a deterministic model (the answer is the same at any value).
_DEMO_PARAMETERS: Final = (
    "temperature",
    "top_p",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logprobs",
    "top_logprobs",
    "n",
    "parallel_tool_calls",
    "prompt_cache_key",
    "user",
    "safety_identifier",
)

DEMO_CATALOG: Final[dict[str, Any]] = {
    "models": {
        "demo": {
            "aliases": ["demo-latest"],
            "display_name": "Demo",
            "created": 1767225600,
            "providers": [
                {
                    "name": "demo",
                    "model_id": "demo",
                    "input_price": 0.5,
                    "output_price": 1.5,
                    "cached_input_price": 0.05,
                    "context_window": 8192,
                    "max_output_tokens": 2048,
                    "data_policy": "zdr",
                    "supported_parameters": list(_DEMO_PARAMETERS),
                    "capabilities": {
                        "tools": True,
                        "structured_output": True,
                        "vision": True,
                        "files": True,
                    },
                }
            ],
        },
        "demo-reasoning": {
            "display_name": "Demo Reasoning",
            "created": 1767225600,
            "providers": [
                {
                    "name": "demo",
                    "model_id": "demo-reasoning",
                    "input_price": 1.0,
                    "output_price": 4.0,
                    "cached_input_price": 0.1,
                    "context_window": 16384,
                    "max_output_tokens": 4096,
                    "data_policy": "zdr",
                    "supported_parameters": list(_DEMO_PARAMETERS),
                    "capabilities": {
                        "tools": True,
                        "structured_output": True,
                        "vision": True,
                        "files": True,
                        "reasoning": True,
                        "reasoning_efforts": ["low", "medium", "high"],
                    },
                }
            ],
        },
        "demo-responses": {
            "display_name": "Demo (Responses only)",
            "created": 1767225600,
            "providers": [
                {
                    "name": "demo",
                    "model_id": "demo-responses",
                    "input_price": 0.5,
                    "output_price": 1.5,
                    "cached_input_price": 0.05,
                    "context_window": 8192,
                    "max_output_tokens": 2048,
                    "data_policy": "zdr",
                    "endpoints": ["responses"],
                    "supported_parameters": list(_DEMO_PARAMETERS),
                    "capabilities": {
                        "tools": True,
                        "structured_output": True,
                        "vision": True,
                        "files": True,
                    },
                }
            ],
        },
    }
}


def _demo_for(provider: str) -> dict[str, Any]:
    models = {
        key: {**value, "providers": [{**p, "name": provider} for p in value["providers"]]}
        for key, value in DEMO_CATALOG["models"].items()
    }
    return {"models": models}
