"""Settings for every environment; differences come from environment variables.

One module per concern, each setting assigned once there (apps/core/tests/
test_settings_modules.py). This module only puts them together; a module that needs another's
value imports it from there (security.py reads DEBUG from django.py, the Redis key prefix and
the Celery queue are named after database.py's INSTALL_NAME, ...).
"""

# In dependency order: a module reads values only from those above it.
# isort: skip_file
from .env import *  # noqa: F403
from .observability import *  # noqa: F403
from .django import *  # noqa: F403
from .security import *  # noqa: F403
from .api import *  # noqa: F403
from .database import *  # noqa: F403
from .redis import *  # noqa: F403
from .celery import *  # noqa: F403
from .mail import *  # noqa: F403
from .sales import *  # noqa: F403
from .protection import *  # noqa: F403
from .waiting_room import *  # noqa: F403
from .payments import *  # noqa: F403
