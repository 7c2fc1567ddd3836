"""Lazy import and connection of ``redis.asyncio`` (the ``redis`` extra is optional)."""

from __future__ import annotations

from typing import Any

__all__ = ["connect_redis", "redis_errors"]


def connect_redis(url: str, *, timeout: float = 1.0) -> Any:
    """A ``redis.asyncio.Redis`` for ``url`` with short timeouts and one immediate retry.

    One retry without backoff replaces a pooled connection that died with a restarted server, so
    the first request after Redis returns succeeds; a down server still fails fast (503).
    """
    try:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the Redis store needs the redis extra: pip install 'akgate[redis]'"
        ) from exc
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=0,
    )


def redis_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "Redis is unreachable or failing" (TimeoutError and OSError too)."""
    try:
        from redis.exceptions import RedisError
    except ImportError:  # pragma: no cover
        return (OSError, TimeoutError)
    return (RedisError, OSError, TimeoutError)
