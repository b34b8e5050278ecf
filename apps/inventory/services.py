"""Inventory: unit rows in PostgreSQL (the guard) and the pool in Redis (the fast filter)."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from django.db import connection, transaction
from redis.exceptions import LockNotOwnedError

from apps.core.redis import RedisError, get_redis

from . import redis_scripts
from .keys import sale_keys
from .models import SaleBuyer, Unit
from .signals import inventory_rebuilt

logger = logging.getLogger(__name__)

REBUILD_LOCK_SECONDS = 30
_CHUNK = 5000


class InventoryUnavailable(Exception):
    """Redis could not say whether units are left; nothing is handed out on a guess."""


@transaction.atomic
def inventory_stock(*, sale_id: object, total_inventory: int) -> None:
    """Make the sale have exactly ``total_inventory`` unit rows (never removing held ones)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO inventory_unit (sale_id, number) "
            "SELECT %s, n FROM generate_series(0, %s - 1) AS n "
            "ON CONFLICT (sale_id, number) DO NOTHING",
            [sale_id, total_inventory],
        )
        cursor.execute(
            "DELETE FROM inventory_unit WHERE sale_id = %s AND number >= %s AND order_id IS NULL",
            [sale_id, total_inventory],
        )


def inventory_units_add(*, sale_id: object, numbers: list[int]) -> None:
    """Put newly stocked unit numbers in the Redis pool, once the rows are committed.

    Call inside the transaction that inserted the rows: the units reach Redis only after
    PostgreSQL has them, so Redis can never hand out a unit PostgreSQL does not know. When
    the pool is not primed, nothing is added: the next request rebuilds it from PostgreSQL.
    When Redis errs, reconciliation adds them later (fail closed: fewer units, never more).
    """

    def add() -> None:
        try:
            redis_scripts.add_missing(sale_keys(sale_id), units=numbers)
        except RedisError:
            logger.warning("could not add %d new units of sale %s to Redis", len(numbers), sale_id)

    transaction.on_commit(add)


# Inventory's share of an order's transaction: common table expressions the orchestrator
# composes into its one statement (apps/orders/services/reservations.py), for one or many
# holds at once. ``units_taken`` points exactly the units each hold names at its order, only
# those still free (PostgreSQL, not Redis, decides: a unit is taken once); ``buyers_raised``
# raises each shopper's tally within their limit (the CHECK refuses more). Each returns one
# row per unit taken / per shopper raised, so the caller sees every hold's own outcome.
# "Still free" is written num_nulls(order_id) = 1, not order_id IS NULL: the same test, which
# the planner cannot match to the partial index of free units, so it looks each unit up by
# (sale_id, number) instead of scanning every free unit of the sale once per unit taken (a
# group of 4 in a sale with 2,010 free units: 0.94 -> 0.51 ms; it grew with the stock).
UNITS_TAKEN_SQL = """units_taken AS (
    UPDATE inventory_unit AS unit SET order_id = held.order_id
    FROM unnest(%(unit_order_ids)s::uuid[], %(unit_sale_ids)s::uuid[], %(unit_numbers)s::int[])
        AS held(order_id, sale_id, number)
    WHERE unit.sale_id = held.sale_id AND unit.number = held.number
        AND num_nulls(unit.order_id) = 1
    RETURNING unit.order_id
)"""
BUYERS_RAISED_SQL = """buyers_raised AS (
    INSERT INTO inventory_salebuyer (sale_id, user_id, units_held, max_units)
    SELECT * FROM unnest(%(buyer_sale_ids)s::uuid[], %(buyer_user_ids)s::bigint[],
        %(buyer_quantities)s::int[], %(buyer_limits)s::int[])
    ON CONFLICT (sale_id, user_id) DO UPDATE
        SET units_held = inventory_salebuyer.units_held + EXCLUDED.units_held,
            max_units = EXCLUDED.max_units
        WHERE inventory_salebuyer.units_held + EXCLUDED.units_held <= EXCLUDED.max_units
    RETURNING sale_id, user_id
)"""


@dataclass(frozen=True)
class UnitsClaim:
    """One hold's claim on a sale's units, as the two expressions above take it. A shopper
    appears at most once per statement (PostgreSQL cannot raise one tally row twice)."""

    order_id: str
    sale_id: str
    user_id: int
    quantity: int
    units: list[int]
    max_units: int


def units_claims_params(claims: list[UnitsClaim]) -> dict:
    """The parameters of ``UNITS_TAKEN_SQL`` and ``BUYERS_RAISED_SQL``."""
    return {
        "unit_order_ids": [c.order_id for c in claims for _ in c.units],
        "unit_sale_ids": [c.sale_id for c in claims for _ in c.units],
        "unit_numbers": [n for c in claims for n in c.units],
        "buyer_sale_ids": [c.sale_id for c in claims],
        "buyer_user_ids": [c.user_id for c in claims],
        "buyer_quantities": [c.quantity for c in claims],
        "buyer_limits": [c.max_units for c in claims],
    }


def units_pick_free(cursor, *, sale_id: object, quantity: int) -> list[int]:
    """Without Redis: lock up to ``quantity`` free units of the sale that no other
    transaction has locked (inside the caller's transaction)."""
    cursor.execute(
        "SELECT number FROM inventory_unit WHERE sale_id = %s AND order_id IS NULL "
        "LIMIT %s FOR UPDATE SKIP LOCKED",
        [sale_id, quantity],
    )
    return [number for (number,) in cursor.fetchall()]


def inventory_rebuild(*, sale_id: object) -> int | None:
    """Rebuild the sale's Redis pool and buyer counts from PostgreSQL (which wins).

    One process rebuilds at a time (redis-py's lock, not waited for; its token is the pool's
    generation); the swap is atomic and leaves out units that holds still in flight have
    taken. Returns the units left, or None when another process is rebuilding.
    """
    redis = get_redis()
    keys = sale_keys(sale_id)
    token = uuid.uuid4().hex
    lock = redis.lock(keys.rebuild_lock, timeout=REBUILD_LOCK_SECONDS, blocking=False)
    if not lock.acquire(token=token):
        return None
    try:
        free = list(
            Unit.objects.filter(sale_id=sale_id, order__isnull=True).values_list(
                "number", flat=True
            )
        )
        buyers = dict(
            SaleBuyer.objects.filter(sale_id=sale_id, units_held__gt=0).values_list(
                "user_id", "units_held"
            )
        )
        pipe = redis.pipeline(transaction=False)
        pipe.delete(keys.staged_free)
        pipe.delete(keys.staged_buyers)
        for start in range(0, len(free), _CHUNK):
            pipe.sadd(keys.staged_free, *free[start : start + _CHUNK])
        items = list(buyers.items())
        for start in range(0, len(items), _CHUNK):
            pipe.hset(keys.staged_buyers, mapping=dict(items[start : start + _CHUNK]))
        pipe.execute()
        # Units were ever held (a shopper's tally row exists): a process may remember the
        # sale sold out, so units the new pool offers wait a moment (reserve.lua).
        units_were_sold = SaleBuyer.objects.filter(sale_id=sale_id).exists()
        left = redis_scripts.swap_rebuilt(keys, generation=token, units_were_sold=units_were_sold)
        inventory_rebuilt.send(sender=None, sale_id=sale_id, units_left_now=left)
        logger.info("inventory rebuilt for sale %s: %s units free", sale_id, left)
        return left
    finally:
        try:
            lock.release()
        except LockNotOwnedError:
            pass  # it expired; the next rebuild may already hold it
        except RedisError:
            logger.warning("could not release lock %s", keys.rebuild_lock)


def inventory_ensure_primed(*, sale_id: object, wait_seconds: float = 3.0) -> None:
    """Make sure the Redis pool exists, rebuilding it or waiting for whoever is."""
    keys = sale_keys(sale_id)
    redis = get_redis()
    deadline = time.monotonic() + wait_seconds
    while True:
        if redis.exists(keys.primed):
            return
        if inventory_rebuild(sale_id=sale_id) is not None:
            return
        if time.monotonic() > deadline:
            raise InventoryUnavailable("inventory is being rebuilt")
        time.sleep(0.05)


def units_left(*, sale_id: object) -> int | None:
    """Units free right now according to Redis, or None when Redis does not know."""
    keys = sale_keys(sale_id)
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.exists(keys.primed)
        pipe.scard(keys.free)
        primed, left = pipe.execute()
    except RedisError:
        return None
    return int(left) if primed else None


def units_return(
    *, sale_id: object, order_id: object, user_id: int, quantity: int, units: list[int]
) -> None:
    """After PostgreSQL freed an order's units, put them back in the Redis pool (once)."""
    try:
        redis_scripts.return_units(
            sale_keys(sale_id),
            order_id=str(order_id),
            user_id=user_id,
            quantity=quantity,
            units=units,
        )
    except RedisError:
        # Reconciliation puts them back from PostgreSQL.
        logger.warning("could not return units of order %s to Redis", order_id)
