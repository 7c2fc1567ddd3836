"""``extensions`` sanitisation stays linear in the request size."""

from __future__ import annotations

import gc
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
    # Linear, not quadratic: this process's CPU time with the collector paused, so neither other
    # jobs on the machine nor a full collection over what earlier tests left alive count.
    gc.disable()
    try:
        t0 = time.process_time()
        assert sanitize_extensions(ext, lambda *a: warnings.append(a))
        elapsed = time.process_time() - t0
    finally:
        gc.enable()
    assert elapsed < 2.0
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
