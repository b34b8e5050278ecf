"""Settings of a Celery worker process started by the integration tests: the test run's
database (pytest-django's test_flashsale_<run>), Redis key prefix and queue."""

import os

from flashsale.settings.test import *  # noqa: F403
from flashsale.settings.test import CACHES, CHANNEL_LAYERS, DATABASES

REDIS_KEY_PREFIX = os.environ["FS_TEST_REDIS_PREFIX"]
CACHES["default"]["KEY_PREFIX"] = REDIS_KEY_PREFIX + "cache"
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = REDIS_KEY_PREFIX + "ws"
DATABASES["default"]["NAME"] = DATABASES["default"]["TEST"]["NAME"]
# Named so the tests can end this worker's sessions after a SIGKILL (and drop the test DB).
DATABASES["default"]["OPTIONS"]["application_name"] = "fs-paytest-worker"
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", "/tmp/fs-test-mail")
# A test may run the worker as a role of its own, to make the database refuse it alone.
DATABASES["default"]["USER"] = os.environ.get("FS_TEST_DB_USER") or DATABASES["default"]["USER"]
# ...and with the psycopg pool production processes use (the test process runs without).
if os.environ.get("FS_TEST_DB_POOL"):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"]["pool"] = {"min_size": 1, "max_size": 4, "timeout": 1.0}
