"""Redis: the key prefix, the cache (on a Redis Cluster when one is given), the Channels layer."""

from .database import INSTALL_NAME
from .env import env

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Prefix for every key this project writes, so test runs and demos can share one server.
# ("fs-<install>:", not "fs:<install>:", so one install's "fs:*" never matches another's keys.)
REDIS_KEY_PREFIX = env(
    "REDIS_KEY_PREFIX", default="fs:" if INSTALL_NAME == "flashsale" else f"fs-{INSTALL_NAME}:"
)
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=1.0)
# Scale-out (issue 14): REDIS_CLUSTER_NODES=host:port,... (any seed nodes) puts everything that
# can run on a Redis Cluster there (apps/core/redis.py): scripts, records, the cache and the
# rate limits in it. REDIS_URL then serves only the Channels layer (pub/sub; channels-redis has
# no cluster mode).
REDIS_CLUSTER_NODES = env.list("REDIS_CLUSTER_NODES", default=[])

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX + "cache",
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": 1,
            "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
            **(
                {"CONNECTION_FACTORY": "apps.core.redis.ClusterConnectionFactory"}
                if REDIS_CLUSTER_NODES
                else {}
            ),
        },
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": REDIS_KEY_PREFIX + "ws"},
    }
}
