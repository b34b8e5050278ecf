"""Purchases while Redis is away: PostgreSQL alone guards, at a capped concurrency.

The units are picked with ``SELECT … FOR UPDATE SKIP LOCKED`` and the same single statement
as the fast path inserts the order, points the rows at it and raises the shopper's tally, so
PostgreSQL's constraints refuse any oversell exactly as before. Each such sale is marked in
``orders_degradedsale`` in the same transaction; when Redis answers again the sale's
Redis counters are rebuilt from PostgreSQL before this process goes back to the fast path
(and a beat task does the same for processes that get no purchase).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction

from apps.core.errors import ApplicationError, Gone, ServiceUnavailable, TooEarly
from apps.core.redis import RedisError, get_redis
from apps.core.times import isoformat_z
from apps.inventory.keys import sale_keys
from apps.inventory.services import inventory_rebuild
from apps.sales.selectors import SaleSnapshot

from ..models import DegradedSale, Order
from .reservations import (
    AlreadyReserved,
    IdempotencyKeyReused,
    Reservation,
    SoldOut,
    _body_from_order,
    order_insert_holding_units,
    order_url,
    payment_url,
)

logger = logging.getLogger(__name__)

_slots_by_cap: dict[int, threading.BoundedSemaphore] = {}


def _slots() -> threading.BoundedSemaphore:
    cap = max(1, settings.DEGRADED_PURCHASE_CONCURRENCY)
    slots = _slots_by_cap.get(cap)
    if slots is None:
        slots = _slots_by_cap.setdefault(cap, threading.BoundedSemaphore(cap))
    return slots


_state_lock = threading.Lock()
_resync_needed = False


def redis_failure_noted() -> None:
    """This process saw Redis fail: the fast path waits for a resync once Redis answers."""
    global _resync_needed
    with _state_lock:
        _resync_needed = True


def resync_needed() -> bool:
    return _resync_needed


class DegradedBusy(ServiceUnavailable):
    code = "overloaded"


_SALE_CLOCK_SQL = """
SELECT status, now() >= start_time, now() < end_time,
       GREATEST(1, ceil(extract(epoch FROM start_time - now())))::int
FROM sales_flashsale WHERE id = %s
"""
_PICK_SQL = """
SELECT number FROM inventory_unit
WHERE sale_id = %s AND order_id IS NULL
LIMIT %s FOR UPDATE SKIP LOCKED
"""
_MARK_SQL = """
INSERT INTO orders_degradedsale (sale_id, generation, since) VALUES (%s, 1, now())
ON CONFLICT (sale_id) DO UPDATE SET generation = orders_degradedsale.generation + 1
"""


def order_reserve_degraded(
    *, sale: SaleSnapshot, user_id: int, quantity: int, idempotency_key: str
) -> Reservation:
    """Reserve through PostgreSQL only; the body says ``"degraded": true``."""
    redis_failure_noted()
    slots = _slots()
    if not slots.acquire(blocking=False):
        raise DegradedBusy(
            "Orders are running in a reduced mode; try again in a moment.", retry_after=1
        )
    try:
        return _reserve(
            sale=sale, user_id=user_id, quantity=quantity, idempotency_key=idempotency_key
        )
    except DatabaseError as exc:
        logger.warning("postgres refused a degraded reservation: %s", exc)
        raise ServiceUnavailable(
            "Orders are briefly unavailable; nothing was reserved.", code="database_unavailable"
        ) from None
    finally:
        slots.release()


def _replay(*, sale: SaleSnapshot, user_id: int, quantity: int, idempotency_key: str):
    order = Order.objects.filter(user_id=user_id, idempotency_key=idempotency_key).first()
    if order is None:
        return None
    if str(order.sale_id) != sale.id or order.quantity != quantity:
        raise IdempotencyKeyReused("This X-Idempotency-Key was used with a different request body.")
    return Reservation(body=_body_from_order(order, None) | {"degraded": True}, created=False)


def _body(order_id, reserved_until) -> dict:
    return {
        "order_id": str(order_id),
        "status": "reserved",
        "reservation_expires_at": isoformat_z(reserved_until),
        "payment_url": payment_url(order_id),
        "order_url": order_url(order_id),
        "remaining_inventory": None,
        "degraded": True,
    }


def _reserve(*, sale: SaleSnapshot, user_id: int, quantity: int, idempotency_key: str):
    replay = _replay(sale=sale, user_id=user_id, quantity=quantity, idempotency_key=idempotency_key)
    if replay is not None:
        return replay
    order_id = str(uuid.uuid4())
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_SALE_CLOCK_SQL, [sale.id])
            row = cursor.fetchone()
            if row is None:
                raise ApplicationError("No such sale.", code="sale_not_found", status=404)
            status, started, not_ended, seconds_to_start = row
            if status in ("CANCELLED", "COMPLETED") or not not_ended:
                raise Gone("This sale has ended.", code="sale_ended")
            if not started:
                raise TooEarly(
                    "The sale has not started yet.",
                    extra={
                        "starts_at": isoformat_z(sale.starts_at),
                        "starts_in_seconds": seconds_to_start,
                    },
                    headers={"Retry-After": str(seconds_to_start)},
                )
            cursor.execute(_PICK_SQL, [sale.id, quantity])
            units = [number for (number,) in cursor.fetchall()]
            if len(units) < quantity:
                raise SoldOut("Sold out: no unit is free right now.")
            reserved_until, taken, tally = order_insert_holding_units(
                cursor,
                sale=sale,
                user_id=user_id,
                quantity=quantity,
                idempotency_key=idempotency_key,
                order_id=order_id,
                units=units,
            )
            if taken != quantity:  # cannot happen: the rows are locked by this transaction
                raise SoldOut("Those units were just taken; try again.")
            if tally != 1:
                raise AlreadyReserved(
                    f"You already hold the most units allowed ({sale.max_per_user})."
                )
            cursor.execute(_MARK_SQL, [sale.id])
    except IntegrityError:
        replay = _replay(
            sale=sale, user_id=user_id, quantity=quantity, idempotency_key=idempotency_key
        )
        if replay is None:
            raise
        return replay
    return Reservation(body=_body(order_id, reserved_until), created=True)


def degraded_sales_resync(*, wait_seconds: float = 3.0) -> bool:
    """Rebuild the Redis counters of every sale sold in degraded mode; True when none is
    left (the fast path may resume), False while Redis is still away or a rebuild is busy."""
    try:
        get_redis().ping()
    except RedisError:
        return False
    done = True
    for sale_id, generation in DegradedSale.objects.values_list("sale_id", "generation"):
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                left = inventory_rebuild(sale_id=sale_id)
            except RedisError:
                return False
            if left is not None:
                DegradedSale.objects.filter(sale_id=sale_id, generation=generation).delete()
                logger.info("sale %s resynced after degraded mode: %s units free", sale_id, left)
                break
            if time.monotonic() > deadline:
                done = False
                break
            time.sleep(0.05)
            try:  # another process is rebuilding: wait for its lock to go
                if not get_redis().exists(sale_keys(sale_id).rebuild_lock):
                    continue
            except RedisError:
                return False
    return done and not DegradedSale.objects.exists()


def fast_path_state() -> str:
    """Called before a purchase. "ready": the fast path may serve. After this process saw
    Redis fail, every purchase first pings Redis (a refused connection costs microseconds):
    "redis_down" lets the purchase go on to fail over to PostgreSQL; once Redis answers, the
    degraded sales are rebuilt first, and "resyncing" (a 503 with Retry-After) covers the
    moments that takes. A Redis that returns between the ping and the reservation can hand
    out a unit PostgreSQL already sold: PostgreSQL refuses it (that shopper is told to retry)
    and the unit leaves the Redis pool."""
    global _resync_needed
    if not _resync_needed:
        return "ready"
    try:
        get_redis().ping()
    except RedisError:
        return "redis_down"
    try:
        ready = degraded_sales_resync()
    except DatabaseError:
        return "resyncing"
    if not ready:
        return "resyncing"
    with _state_lock:
        _resync_needed = False
    return "ready"
