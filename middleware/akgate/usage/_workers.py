"""What ``akgate serve --workers N`` says about limits counted in each worker's memory."""

from __future__ import annotations

__all__ = ["per_worker_limits_warning"]


def per_worker_limits_warning(workers: int, redis_url: str | None) -> str | None:
    """The start-up warning for ``--workers N`` (N > 1) without ``--redis``, else None.

    Without Redis, each worker keeps its own requests-per-minute, tokens-per-minute and budget
    counters (in memory: admission stays a few microseconds). Sharing them through the SQLite
    file would put a write transaction, serialized across the workers, on every request twice
    (admission and settlement), so the gateway says what the limits mean instead, and how to
    share them: Redis, one atomic round trip each way.
    """
    if workers <= 1 or redis_url:
        return None
    return (
        f"akgate serve: warning: --workers {workers} without --redis: each worker counts "
        "requests per minute (rpm), tokens per minute (tpm) and budgets on its own, so a key "
        f"can pass each of its limits up to {workers} times over (the usage ledger is shared). "
        "Add --redis URL to share the counters between the workers."
    )
