"""``extensions`` sanitisation stays linear in the request size."""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

from akgate.context import MAX_WARNINGS
from akgate.validation._extensions import sanitize_extensions


def test_long_key_is_not_copied_into_every_descendant_path() -> None:
    long_key = "k" * 10_000
    ext: dict[str, Any] = {"demo": {long_key: [[] for _ in range(5_000)]}}
    tracemalloc.start()
    try:
        sanitize_extensions(ext, lambda *a: None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000  # was one 10 kB path string per list item (50 MB)


def test_blocked_paths_are_shortened_and_warnings_capped() -> None:
    long_key = "k" * 10_000
    ext: dict[str, Any] = {"demo": {long_key: [{"api_key": "s3cret"} for _ in range(10_000)]}}
    warnings: list[tuple[str, str, str]] = []
    t0 = time.perf_counter()
    assert sanitize_extensions(ext, lambda *a: warnings.append(a))
    assert time.perf_counter() - t0 < 2.0
    assert all(item == {} for item in ext["demo"][long_key])  # every credential is removed
    assert len(warnings) == MAX_WARNINGS
    _, code, message = warnings[0]
    assert code.startswith("extensions.demo." + "k" * 64 + "...[")
    assert code.endswith("].api_key")
    assert len(code) < 200
    assert "s3cret" not in message


def test_paths_are_unchanged_for_ordinary_keys() -> None:
    ext: dict[str, Any] = {"demo": {"opts": [{"nested": {"Api-Key": "x"}}], "model": "m"}}
    warnings: list[tuple[str, str, str]] = []
    sanitize_extensions(ext, lambda *a: warnings.append(a))
    assert sorted(w[1] for w in warnings) == [
        "extensions.demo.model",
        "extensions.demo.opts[0].nested.Api-Key",
    ]
