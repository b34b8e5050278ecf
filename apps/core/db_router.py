"""Reads that may be slightly stale go to the read replica; everything else to the primary.

With DATABASE_REPLICA_URL set, settings define a ``replica`` database. Code that can live with
a replica's lag (the public sale list, the admin's figures) asks for it explicitly, with
``stale_reads()`` around the read or ``.using(stale_read_alias())`` on a queryset. Everything
that decides inventory, orders or money reads and writes the primary (``default``): the
router never sends a read there on a guess, and a write always goes to the primary.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

REPLICA = "replica"
_stale_ok: contextvars.ContextVar[bool] = contextvars.ContextVar("stale_reads_ok", default=False)


def stale_read_alias() -> str:
    """The database for a read that tolerates lag: the replica when one is configured."""
    return REPLICA if REPLICA in settings.DATABASES else "default"


@contextmanager
def stale_reads() -> Iterator[None]:
    """Reads inside go to the replica (when configured)."""
    token = _stale_ok.set(True)
    try:
        yield
    finally:
        _stale_ok.reset(token)


class PrimaryReplicaRouter:
    def db_for_read(self, model, **hints):
        return stale_read_alias() if _stale_ok.get() else "default"

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replica is a copy of the primary: the same rows

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"
