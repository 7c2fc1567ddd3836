"""Every layer class documents itself in the one docstring style of ``docs/design.md``."""

from __future__ import annotations

import inspect

import pytest

import akgate

LAYERS = [
    "APIKeyAuth",
    "RequestValidation",
    "Routing",
    "ResponsesAdapter",
    "MessagesAdapter",
    "StatefulResponses",
    "SpendControl",
    "SSEKeepAlive",
    "RequestBodyTimeout",
    "HealthChecks",
    "AccessLog",
    "PrometheusMetrics",
    "Tracing",
]


@pytest.mark.parametrize("name", LAYERS)
def test_layer_docstring_lists_every_option(name: str) -> None:
    layer = getattr(akgate, name)
    doc = inspect.getdoc(layer) or ""
    summary, _, rest = doc.partition("\n\n")
    assert summary, name
    assert "Options (keyword-only):" in rest, name
    params = inspect.signature(layer.__init__).parameters.values()
    options = [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert options, name
    missing = [option for option in options if f"``{option}``" not in rest]
    assert missing == [], f"{name} does not document {missing}"
