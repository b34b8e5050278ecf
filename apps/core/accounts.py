"""Accounts that may no longer use their tokens: deactivated or deleted shoppers.

A bearer token is verified without a database hit, so it would keep working after its
shopper is deactivated or deleted. Every path that deactivates or deletes an account goes
through the services below (the admin included), which add the id to a Redis set and
replace its version (a random value). Each process keeps a copy of the set and asks Redis
for the version at most every ACCOUNT_MEMORY_SECONDS (one GET; the set itself is re-read
only when it changed), so checking a token costs a set lookup in memory and no PostgreSQL
query; a change made in this process is seen at once, in another within that interval.

PostgreSQL stays the truth for deactivations: a beat task (``inactive_accounts_restore``,
every minute) adds every ``is_active = false`` account to the set, which rebuilds it after
Redis lost it and catches a deactivation made outside these services (a shell). Deleted
accounts are no longer in PostgreSQL: their ids live in the set only, which is why deletion
goes through ``users_delete``; an order for a deleted shopper still cannot be written (its
foreign key). When Redis is down, each process keeps its last copy.
"""

from __future__ import annotations

import logging
import threading
import uuid

from django.contrib.auth import get_user_model
from django.db import transaction

from .errors import NotAuthenticated
from .memory import ProcessMemory
from .redis import RedisError, get_redis, key

logger = logging.getLogger(__name__)

# One hash tag: the MULTI/EXEC that changes both stays on one Redis Cluster slot.
INACTIVE = key("{accounts:inactive}", "users")
VERSION = key("{accounts:inactive}", "version")


class AccountInactive(NotAuthenticated):
    code = "account_inactive"

    def __init__(self, detail: str = "This account is deactivated or deleted.", **kwargs):
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


def _new_version() -> str:
    # Random, not a counter: a counter restarted after Redis lost it could repeat a version a
    # process already holds, and the process would keep its stale copy.
    return uuid.uuid4().hex


def _publish(*, add: list[int] = (), remove: list[int] = ()) -> None:
    """Write the change to Redis and forget this process's copy. A Redis failure is logged,
    not raised: the account change in PostgreSQL stands, and the restore task catches up."""
    try:
        pipe = get_redis().pipeline(transaction=True)
        if add:
            pipe.sadd(INACTIVE, *add)
        if remove:
            pipe.srem(INACTIVE, *remove)
        pipe.set(VERSION, _new_version())
        pipe.execute()
    except RedisError as exc:
        logger.error("could not publish account change (%s): restore will catch up", exc)
    _memory_forget()


def accounts_mark_inactive(*, user_ids: list[int]) -> None:
    if user_ids:
        _publish(add=[int(u) for u in user_ids])


def accounts_mark_active(*, user_ids: list[int]) -> None:
    if user_ids:
        _publish(remove=[int(u) for u in user_ids])


@transaction.atomic
def users_set_active(*, user_ids: list[int], active: bool) -> int:
    """Deactivate (or reactivate) accounts; their tokens stop (or start again) working."""
    changed = get_user_model().objects.filter(id__in=user_ids).update(is_active=active)
    mark = accounts_mark_active if active else accounts_mark_inactive
    transaction.on_commit(lambda: mark(user_ids=list(user_ids)))
    return changed


def user_saved(*, user, was_active: bool | None) -> None:
    """After a form saved ``user`` (the admin's change form): publish a change of
    ``is_active``."""
    if was_active is None or was_active != user.is_active:
        mark = accounts_mark_active if user.is_active else accounts_mark_inactive
        transaction.on_commit(lambda: mark(user_ids=[user.pk]))


def users_delete(*, users) -> None:
    """Delete accounts (a queryset or a list); their tokens stop working once it commits."""
    ids = [u.pk for u in users]
    with transaction.atomic():
        get_user_model().objects.filter(id__in=ids).delete()
        transaction.on_commit(lambda: accounts_mark_inactive(user_ids=ids))


def inactive_accounts_restore() -> int:
    """Add every account PostgreSQL says is inactive to the set (ids already there, such as
    deleted accounts, stay; a reactivation made outside the services is not undone here).
    Safe to run any time; the beat runs it every minute. Returns how many ids were added."""
    ids = list(get_user_model().objects.filter(is_active=False).values_list("id", flat=True))
    redis = get_redis()
    pipe = redis.pipeline(transaction=False)
    for start in range(0, len(ids), 10_000):
        pipe.sadd(INACTIVE, *ids[start : start + 10_000])
    pipe.exists(VERSION)
    *added, has_version = pipe.execute()
    if sum(added) or not has_version:
        redis.set(VERSION, _new_version())
        _memory_forget()
    return sum(added)


# --- The check, on every authenticated request ----------------------------------------------

# The copy of the set and the version it was read at. It is kept past its period (used
# while another thread refreshes it, or while Redis is away); the memory only says when to
# look at the version again.
_copy: tuple[bytes | None, frozenset[int]] = (None, frozenset())
_checked = ProcessMemory("inactive_accounts", seconds="ACCOUNT_MEMORY_SECONDS", maxsize=1)
_lock = threading.Lock()


def _memory_forget() -> None:
    _checked.clear()


def _refresh() -> None:
    global _copy
    if not _lock.acquire(blocking=False):
        return  # another thread is refreshing: use the copy we have meanwhile
    try:
        if _checked.get("version"):
            return
        try:
            version = get_redis().get(VERSION)
            if version != _copy[0]:
                _copy = (version, frozenset(int(i) for i in get_redis().smembers(INACTIVE)))
        except RedisError:
            pass  # keep the last copy; try again after the interval
        _checked.set("version", True)
    finally:
        _lock.release()


def account_is_inactive(user_id: int) -> bool:
    if not _checked.get("version"):
        _refresh()
    return user_id in _copy[1]


def account_check(user_id: int) -> None:
    """Raise AccountInactive (401 ``account_inactive``) for a deactivated or deleted account."""
    if account_is_inactive(user_id):
        raise AccountInactive()
