from __future__ import annotations

from collections.abc import Iterator

import pytest

from akgate.providers import DemoModel
from tests.support.servers import run_uvicorn


@pytest.fixture(scope="module")
def demo_url() -> Iterator[str]:
    """The demo model on a real uvicorn (one per test module): an upstream's base URL."""
    with run_uvicorn(DemoModel()) as base:
        yield base + "/v1"
