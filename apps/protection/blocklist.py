"""The block list: PostgreSQL keeps the admin's decisions, Redis answers in O(1)."""

from __future__ import annotations

from django.conf import settings
from django.db import DatabaseError, transaction

from apps.core.errors import ServiceUnavailable
from apps.core.memory import ProcessMemory
from apps.core.redis import RedisError, get_redis, key

from .models import FlaggedAddress, FlaggedShopper

# One hash tag: the restore's MULTI/EXEC and the reads' pipeline stay on one Redis Cluster slot.
USERS = key("{protection:blocked}", "users")
IPS = key("{protection:blocked}", "ips")
LOADED = key("{protection:blocked}", "loaded")


def blocklist_restore() -> None:
    """Copy PostgreSQL's block list into Redis (after Redis lost it)."""
    users = [
        str(u)
        for u in FlaggedShopper.objects.filter(blocked=True).values_list("user_id", flat=True)
    ]
    ips = list(FlaggedAddress.objects.filter(blocked=True).values_list("ip", flat=True))
    pipe = get_redis().pipeline(transaction=True)
    pipe.delete(USERS, IPS)
    if users:
        pipe.sadd(USERS, *users)
    if ips:
        pipe.sadd(IPS, *ips)
    pipe.set(LOADED, 1)
    pipe.execute()
    _memory_forget()


# A per-process copy of the (small, admin-made) block list, refreshed every
# BLOCKLIST_MEMORY_SECONDS, so a refused request costs no Redis call for it.
_memory = ProcessMemory("block_list", seconds="BLOCKLIST_MEMORY_SECONDS", maxsize=1)


def _memory_forget() -> None:
    _memory.clear()


def _blocked_from_memory(user_id: int | None, ip: str | None) -> str | None:
    copy = _memory.get("copy")
    if copy is None:
        pipe = get_redis().pipeline(transaction=False)
        pipe.exists(LOADED)
        pipe.smembers(USERS)
        pipe.smembers(IPS)
        loaded, users, ips = pipe.execute()
        if not loaded:
            raise _NotLoaded
        copy = (frozenset(u.decode() for u in users), frozenset(i.decode() for i in ips))
        _memory.set("copy", copy)
    blocked_users, blocked_ips = copy
    if user_id and str(user_id) in blocked_users:
        return "user"
    if ip and ip in blocked_ips:
        return "ip"
    return None


class _NotLoaded(Exception):
    pass


def is_blocked(*, user_id: int | None, ip: str | None) -> str | None:
    if settings.BLOCKLIST_MEMORY_SECONDS > 0:
        try:
            return _blocked_from_memory(user_id, ip)
        except (RedisError, _NotLoaded):
            pass  # the checks below rebuild or fall back, as without the copy
    return _is_blocked_now(user_id=user_id, ip=ip)


def _is_blocked_now(*, user_id: int | None, ip: str | None) -> str | None:
    """ "user" or "ip" when blocked, else None. Two SISMEMBERs; PostgreSQL only when Redis is
    down (degraded mode already runs on PostgreSQL) or has lost the list. When neither can
    say, the request is refused with a 503 (fail closed), never a 500."""
    try:
        try:
            pipe = get_redis().pipeline(transaction=False)
            pipe.exists(LOADED)
            pipe.sismember(USERS, str(user_id or ""))
            pipe.sismember(IPS, ip or "")
            loaded, user_blocked, ip_blocked = pipe.execute()
            if not loaded:
                blocklist_restore()
                return _is_blocked_now(user_id=user_id, ip=ip) if _restored_once() else None
        except RedisError:
            user_blocked = bool(
                user_id and FlaggedShopper.objects.filter(user_id=user_id, blocked=True).exists()
            )
            ip_blocked = bool(ip and FlaggedAddress.objects.filter(ip=ip, blocked=True).exists())
    except DatabaseError:
        raise ServiceUnavailable(
            "We cannot check this request right now; try again.", code="blocklist_unavailable"
        ) from None
    if user_blocked:
        return "user"
    if ip_blocked:
        return "ip"
    return None


def _restored_once() -> bool:
    try:
        return bool(get_redis().exists(LOADED))
    except RedisError:
        return False


@transaction.atomic
def shoppers_block(*, user_ids: list[int], reason: str = "blocked by an admin") -> None:
    for user_id in user_ids:
        FlaggedShopper.objects.update_or_create(
            user_id=user_id, defaults={"blocked": True, "blocked_reason": reason}
        )
    transaction.on_commit(blocklist_restore)


@transaction.atomic
def shoppers_clear(*, user_ids: list[int]) -> None:
    FlaggedShopper.objects.filter(user_id__in=user_ids).update(
        blocked=False, blocked_reason="", score=0, reasons=[]
    )
    transaction.on_commit(blocklist_restore)


@transaction.atomic
def addresses_block(*, ips: list[str], reason: str = "blocked by an admin") -> None:
    for ip in ips:
        FlaggedAddress.objects.update_or_create(
            ip=ip, defaults={"blocked": True, "blocked_reason": reason}
        )
    transaction.on_commit(blocklist_restore)


@transaction.atomic
def addresses_clear(*, ips: list[str]) -> None:
    FlaggedAddress.objects.filter(ip__in=ips).update(
        blocked=False, blocked_reason="", score=0, reasons=[]
    )
    transaction.on_commit(blocklist_restore)
