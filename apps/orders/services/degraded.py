"""Purchases while Redis is away: PostgreSQL alone guards, at a capped concurrency.

The units are picked with ``SELECT … FOR UPDATE SKIP LOCKED`` and the same single statement
as the fast path inserts the order, points the rows at it and raises the shopper's tally, so
PostgreSQL's constraints refuse any oversell exactly as before. Each such sale is marked in
``orders_degradedsale`` in the same transaction; when Redis answers again the sale's
Redis counters are rebuilt from PostgreSQL before this process goes back to the fast path
(and a beat task does the same for processes that get no purchase).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from enum import StrEnum

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction

from apps.core.errors import ApplicationError, Gone, ServiceUnavailable, TooEarly
from apps.core.redis import RedisError, get_redis
from apps.core.times import isoformat_z
from apps.inventory.keys import sale_keys
from apps.inventory.services import inventory_rebuild, units_pick_free
from apps.sales.models import SaleStatus
from apps.sales.selectors import SaleSnapshot

from ..models import DegradedSale
from .reservations import (
    AlreadyReserved,
    Hold,
    Reservation,
    SoldOut,
    hold_created_reservation,
    hold_recorded_whole,
    orders_insert_holding_units,
    reservation_replay,
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
        request = {
            "sale": sale,
            "user_id": user_id,
            "quantity": quantity,
            "idempotency_key": idempotency_key,
        }
        replay = reservation_replay(**request, degraded=True)
        if replay is not None:
            return replay
        try:
            return _order_record_degraded(Hold(**request, order_id=str(uuid.uuid4()), units=[]))
        except IntegrityError:
            replay = reservation_replay(**request, degraded=True)
            if replay is None:
                raise
            return replay
    except DatabaseError as exc:
        logger.warning("postgres refused a degraded reservation: %s", exc)
        raise ServiceUnavailable(
            "Orders are briefly unavailable; nothing was reserved.", code="database_unavailable"
        ) from None
    finally:
        slots.release()


def _order_record_degraded(hold: Hold) -> Reservation:
    """The sale's clock by the database's, units picked with SKIP LOCKED, the same statement
    as the fast path, and the sale marked for a resync, in one transaction."""
    sale = hold.sale
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SALE_CLOCK_SQL, [sale.id])
        row = cursor.fetchone()
        if row is None:
            raise ApplicationError("No such sale.", code="sale_not_found", status=404)
        status, started, not_ended, seconds_to_start = row
        if status in (SaleStatus.CANCELLED, SaleStatus.COMPLETED) or not not_ended:
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
        units = units_pick_free(cursor, sale_id=sale.id, quantity=hold.quantity)
        if len(units) < hold.quantity:
            raise SoldOut("Sold out: no unit is free right now.")
        hold = dataclasses.replace(hold, units=units)
        (recorded,) = orders_insert_holding_units(cursor, [hold])
        if recorded.units_taken != hold.quantity:  # cannot happen: this transaction locked them
            raise SoldOut("Those units were just taken; try again.")
        if not hold_recorded_whole(hold, recorded):
            raise AlreadyReserved(f"You already hold the most units allowed ({sale.max_per_user}).")
        cursor.execute(_MARK_SQL, [sale.id])
    return hold_created_reservation(hold, recorded, degraded=True)


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


class FastPathState(StrEnum):
    READY = "ready"  # the fast path may serve
    REDIS_DOWN = "redis_down"  # the purchase goes on, to fail over to PostgreSQL
    RESYNCING = "resyncing"  # Redis is back, the degraded sales are being rebuilt: 503


def fast_path_state() -> FastPathState:
    """Called before a purchase. After this process saw Redis fail, every purchase first
    pings Redis (a refused connection costs microseconds); once Redis answers, the degraded
    sales are rebuilt first, and RESYNCING (a 503 with Retry-After) covers the moments that
    takes. A Redis that returns between the ping and the reservation can hand out a unit
    PostgreSQL already sold: PostgreSQL refuses it (that shopper is told to retry) and the
    unit leaves the Redis pool."""
    global _resync_needed
    if not _resync_needed:
        return FastPathState.READY
    try:
        get_redis().ping()
    except RedisError:
        return FastPathState.REDIS_DOWN
    try:
        ready = degraded_sales_resync()
    except DatabaseError:
        return FastPathState.RESYNCING
    if not ready:
        return FastPathState.RESYNCING
    with _state_lock:
        _resync_needed = False
    return FastPathState.READY
