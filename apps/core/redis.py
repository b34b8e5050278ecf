"""The process's Redis client and key naming.

Every key carries the configured prefix; every key of one sale carries the hash tag
``{sale:<id>}`` so a sale's Lua scripts run on one Redis Cluster slot.
"""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=1)
def get_redis() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=1,
        socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
        health_check_interval=30,
        max_connections=256,
    )


def key(*parts: object) -> str:
    return settings.REDIS_KEY_PREFIX + ":".join(str(p) for p in parts)


def sale_key(sale_id: object, *parts: object) -> str:
    return key(f"{{sale:{sale_id}}}", *parts)


RedisError = redis.RedisError
