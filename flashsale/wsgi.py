import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flashsale.settings.base")
django.setup(set_prefix=False)

from apps.core.handlers import PathDispatch  # noqa: E402 (needs the apps loaded)

# /api/ through the lean middleware chain, the rest through the full one (apps/core/handlers.py).
application = PathDispatch()


def _warm_database_pool() -> None:
    """Open this worker's connection pool before the first request, so the first shoppers do
    not wait for (or time out on) its first connections. A database that is down now is not a
    reason to refuse to start: requests answer 503 until it is back."""
    from django.db import DatabaseError, connection

    if not connection.settings_dict["OPTIONS"].get("pool"):
        return
    try:
        connection.ensure_connection()
    except DatabaseError:
        pass
    finally:
        connection.close()


_warm_database_pool()
