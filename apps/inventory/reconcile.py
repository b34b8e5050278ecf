"""Redis against PostgreSQL, and PostgreSQL wins: reconciliation and the orphan sweep."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from apps.core import metrics
from apps.core.redis import get_redis, key, sale_key, script_pipeline

from . import redis_scripts
from .keys import sale_keys
from .models import SaleBuyer, Unit
from .services import inventory_rebuild

logger = logging.getLogger(__name__)
CORRECTIONS_COUNTER = "stats:reconcile-corrections"


@dataclass
class ReconcileReport:
    sale_id: str
    rebuilt: bool = False
    units_added: int = 0
    units_removed: int = 0
    buyers_fixed: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def corrections(self) -> int:
        return self.units_added + self.units_removed + self.buyers_fixed + int(self.rebuilt)


def _pending_users_and_units(raw: dict) -> tuple[set[int], set[int]]:
    users, units = set(), set()
    for value in raw.values():
        hold = redis_scripts.pending_hold_parse(value)
        users.add(hold.user_id)
        units.update(hold.units)
    return users, units


def inventory_reconcile(*, sale_id: object) -> ReconcileReport:
    redis = get_redis()
    keys = sale_keys(sale_id)
    report = ReconcileReport(str(sale_id))
    if not redis.exists(keys.primed):
        report.rebuilt = inventory_rebuild(sale_id=sale_id) is not None
        report.notes.append("pool missing in Redis: rebuilt from PostgreSQL")
        _log(report)
        return report
    # Redis first, then PostgreSQL: a unit PostgreSQL frees is committed before it is
    # returned to Redis, so this order never mistakes a returning unit for a lost one.
    redis_free = {int(u) for u in redis.smembers(keys.free)}
    redis_buyers = {int(u): int(n) for u, n in redis.hgetall(keys.buyers).items()}
    pending_users, pending_units = _pending_users_and_units(redis.hgetall(keys.pending))
    pg_free = set(
        Unit.objects.filter(sale_id=sale_id, order__isnull=True).values_list("number", flat=True)
    )
    pg_buyers = dict(
        SaleBuyer.objects.filter(sale_id=sale_id, units_held__gt=0).values_list(
            "user_id", "units_held"
        )
    )

    missing = sorted(pg_free - redis_free - pending_units)
    if missing:
        report.units_added = redis_scripts.add_missing(keys, units=missing)
        report.notes.append(f"{report.units_added} free unit(s) were missing from Redis")
    extra = sorted(redis_free - pg_free)
    if extra:
        report.units_removed = redis.srem(keys.free, *extra)
        report.notes.append(f"{report.units_removed} unit(s) held in PostgreSQL were free in Redis")
    for user_id in set(pg_buyers) | set(redis_buyers):
        if user_id in pending_users:
            continue
        want, have = pg_buyers.get(user_id, 0), redis_buyers.get(user_id, 0)
        if want != have:
            if want:
                redis.hset(keys.buyers, user_id, want)
            else:
                redis.hdel(keys.buyers, user_id)
            report.buyers_fixed += 1
    if report.buyers_fixed:
        report.notes.append(f"{report.buyers_fixed} shopper tally(ies) corrected")
    _log(report)
    return report


def last_reconcile_key(sale_id: object) -> str:
    return sale_key(sale_id, "last-reconcile")


def _log(report: ReconcileReport) -> None:
    # The latest verdict, for the operator's console: when, and what had to be corrected.
    verdict = {"at": time.time(), "corrections": report.corrections, "notes": report.notes}
    get_redis().set(last_reconcile_key(report.sale_id), json.dumps(verdict), ex=24 * 3600)
    if report.corrections:
        get_redis().incrby(key(CORRECTIONS_COUNTER), report.corrections)
        metrics.reconciliation_corrections.labels("inventory").inc(report.corrections)
        logger.warning("reconciled sale %s: %s", report.sale_id, "; ".join(report.notes))


# Which of these hold ids became orders in PostgreSQL: the layer that owns the orders tells
# (OrdersConfig.ready sets orders' lookup). Without it the sweep gives nothing back.
_orders_found: list[Callable[[list[str]], set[str]]] = []


def orders_found_set(lookup: Callable[[list[str]], set[str]]) -> None:
    _orders_found[:] = [lookup]


def holds_sweep_orphans(*, sale_id: object, grace_seconds: int) -> int:
    """Give back Redis holds that never became PostgreSQL orders within the grace period."""
    if not _orders_found:
        return 0
    redis = get_redis()
    keys = sale_keys(sale_id)
    seconds, micros = redis.time()
    cutoff_ms = seconds * 1000 + micros // 1000 - grace_seconds * 1000
    stale = [o.decode() for o in redis.zrangebyscore(keys.inflight, "-inf", cutoff_ms)]
    if not stale:
        return 0
    in_postgres = _orders_found[0](stale)
    entries = dict(zip(stale, redis.hmget(keys.pending, stale), strict=True))
    if in_postgres:
        pipe = script_pipeline(keys.inflight)
        redis_scripts.holds_confirm(keys, sorted(in_postgres), client=pipe)
        pipe.execute()
    released = 0
    for order_id in stale:
        if order_id in in_postgres:
            continue
        # Never in PostgreSQL: the request failed. Its idempotency record and admission
        # marker go with the hold, so the shopper's retry (same key or new) can buy.
        hold = redis_scripts.pending_hold_parse(entries[order_id]) if entries[order_id] else None
        if redis_scripts.giveback(
            keys,
            order_id=order_id,
            record_key=hold.record_key if hold else None,
            admission_key=hold.admission_key if hold else None,
            units_free=True,
        ):
            released += 1
    if released:
        metrics.reconciliation_corrections.labels("orphan_hold").inc(released)
        logger.warning("sale %s: gave back %s orphaned hold(s)", sale_id, released)
    return released
