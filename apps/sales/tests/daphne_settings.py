"""Settings for a daphne the browser test starts: the test run's own database, Redis keys and
channel-layer prefix (the test settings derive a prefix from the pid, so pass the parent's)."""

import os

from flashsale.settings.test import *  # noqa: F403
from flashsale.settings.test import CHANNEL_LAYERS, DATABASES

REDIS_KEY_PREFIX = os.environ["SHARED_REDIS_KEY_PREFIX"]
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = REDIS_KEY_PREFIX + "ws"
DATABASES["default"]["NAME"] = os.environ["SHARED_DATABASE_NAME"]
