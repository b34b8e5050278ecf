import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flashsale.settings.base")

application = get_wsgi_application()


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
