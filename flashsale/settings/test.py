"""Test settings: the real services, a Redis database and key prefix of the run's own."""

import os

from .base import *  # noqa: F403
from .base import env

# A database index of the test run's own, and a key prefix unique per run.
REDIS_URL = env("TEST_REDIS_URL", default="redis://127.0.0.1:6379/13")
REDIS_KEY_PREFIX = f"t{os.getpid()}:"
CACHES["default"]["LOCATION"] = REDIS_URL  # noqa: F405
CACHES["default"]["KEY_PREFIX"] = REDIS_KEY_PREFIX + "cache"  # noqa: F405
CHANNEL_LAYERS["default"]["CONFIG"] = {  # noqa: F405
    "hosts": [REDIS_URL],
    "prefix": REDIS_KEY_PREFIX + "ws",
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = False
SOLD_OUT_MEMORY_SECONDS = 0.0
SALE_SNAPSHOT_SECONDS = 0.0
