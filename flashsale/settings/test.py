"""Test settings: the real services, a Redis database and key prefix of the run's own."""

import os

# DEBUG is off here as in production, so the keys must pass the start-up check: test-only keys
# (the processes the tests start inherit them through the environment).
os.environ.setdefault("SECRET_KEY", "test-only-signing-key-7Hq2Lm9Rx4Vb8Nc3Zt6Wk1Pd5Fg0Js-Ya")
os.environ.setdefault("JWT_KEYS", "t1:test-only-jwt-key-Qm4Rz8Xc2Vn6Bt0Lp5Kw9Hd3")

from kombu import Queue  # noqa: E402

from .base import *  # noqa: E402, F403
from .env import env  # noqa: E402
from .payments import merchant_id_of  # noqa: E402

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
PUBLIC_PAGE_SECONDS = 0.0

# Parallel test runs on one machine (several checkouts, CI) each get their own database,
# and their own Celery queue so a worker of one run never takes another run's tasks. Under
# pytest-xdist each worker (gw0, gw1, ...) is a run of its own; the processes a test starts
# inherit PYTEST_XDIST_WORKER, so they name the same database and queue (the root conftest
# turns off pytest-django's own suffix, which the started processes would not see).
_RUN = "_".join(
    part
    for part in (env("TEST_RUN_NAME", default=""), env("PYTEST_XDIST_WORKER", default=""))
    if part
)
TEST_RUN = _RUN or "default"
DATABASES["default"]["TEST"] = {"NAME": "test_flashsale" + (f"_{_RUN}" if _RUN else "")}  # noqa: F405
CELERY_TASK_DEFAULT_QUEUE = "flashsale-test" + (f"-{_RUN}" if _RUN else "")
CELERY_TASK_QUEUES = (Queue(CELERY_TASK_DEFAULT_QUEUE, durable=True),)  # noqa: F405
# The merchant identity of the database the tests really use (the worker processes too).
_TEST_DB = {**DATABASES["default"], "NAME": DATABASES["default"]["TEST"]["NAME"]}  # noqa: F405
PAYMENT_MERCHANT_ID = merchant_id_of(_TEST_DB)
WHITENOISE_AUTOREFRESH = True
# The test process keeps a connection per thread (concurrency tests run dozens of threads, each
# with its own connection); the servers the tests start use the pool, as in production.
DATABASES["default"]["OPTIONS"].pop("pool", None)  # noqa: F405
DATABASES["default"]["CONN_MAX_AGE"] = 60  # noqa: F405
# The test machine is shared and busy: a slow reply is not an outage here.
REDIS_SOCKET_TIMEOUT = 5.0
BLOCKLIST_MEMORY_SECONDS = 0.0
