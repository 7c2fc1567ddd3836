"""Front a remote OpenAI-compatible server (OpenAI, vLLM, Ollama ...) with the akgate stack.

Your clients get akgate keys, validation, routing metadata and ``/v1/responses`` (translated to
chat completions when the upstream only speaks those); the upstream sees its own key only.

Run it (from the repository root)::

    export UPSTREAM_BASE_URL=https://api.openai.com/v1 UPSTREAM_API_KEY=sk-...
    export UPSTREAM_MODELS=gpt-4o-mini,gpt-4o
    pip install -e '.[server]'
    export AKGATE_KEY=$(akgate keys create --name me)
    uvicorn examples.upstream_proxy:app
"""

from __future__ import annotations

import os

from akgate.providers import UpstreamProvider
from akgate.stack import gateway

BASE_URL = os.environ.get("UPSTREAM_BASE_URL", "https://api.openai.com/v1")
MODELS = [m.strip() for m in os.environ.get("UPSTREAM_MODELS", "gpt-4o-mini").split(",") if m]

upstream = UpstreamProvider(BASE_URL, api_key=os.environ.get("UPSTREAM_API_KEY"))

# The upstream is the wrapped app; only its models are served (demo=False drops the demo model).
app = gateway(upstream, models=MODELS, demo=False)
