"""Reservations past their window (by the database's clock) end EXPIRED, in batches."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import connection, transaction

from apps.core import metrics

from ..models import OrderStatus
from ..notifications import orders_notify_later
from .transitions import TransitionLost, order_transition

logger = logging.getLogger(__name__)

# What else must hold for a reservation to expire, added by the apps above orders: each a
# function returning an SQL condition on the orders_order row, called at every run (so
# settings changes are seen). Payments adds "no charge in flight" (see PaymentsConfig).
_expiry_conditions: list[Callable[[], str]] = []


def expiry_condition_add(condition: Callable[[], str]) -> None:
    """Register one more condition for expiry (idempotent: each function counts once)."""
    if condition not in _expiry_conditions:
        _expiry_conditions.append(condition)


def expiry_condition() -> str:
    """The whole SQL condition under which a RESERVED order expires, by the database's
    clock: its window closed, and every registered condition holds."""
    return " AND ".join(["reserved_until < now()", *(f"({c()})" for c in _expiry_conditions)])


def orders_expire_due(*, batch_size: int = 500) -> int:
    """Expire one batch of overdue reservations; safe to run concurrently (SKIP LOCKED)."""
    expired = 0
    expired_ids = []
    condition = expiry_condition()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, EXTRACT(EPOCH FROM now() - reserved_until) FROM orders_order "
            "WHERE status = 'RESERVED' AND "
            + condition
            + " ORDER BY reserved_until LIMIT %s FOR UPDATE SKIP LOCKED",
            [batch_size],
        )
        lag_by_order = dict(cursor.fetchall())
        for order_id, lag in lag_by_order.items():
            try:
                with transaction.atomic():
                    order_transition(
                        order_id=order_id,
                        from_status=OrderStatus.RESERVED,
                        to_status=OrderStatus.EXPIRED,
                        reason="reservation window closed",
                        extra_condition=condition,
                    )
                expired += 1
                expired_ids.append(order_id)
                metrics.expiry_lag.observe(float(lag))
            except TransitionLost:
                continue
        if expired_ids:
            _notify_expired(expired_ids)
    if expired:
        metrics.reservations_expired.inc(expired)
        logger.info("expired %s reservations", expired)
    return expired


def _notify_expired(order_ids: list) -> None:
    """Tell the shoppers (page push and email) from a task after commit, one per batch, so
    a burst of expiries never slows the expiry job itself."""
    orders_notify_later(order_ids=order_ids, event="expired")


def orders_expire_all_due(*, batch_size: int = 500) -> int:
    total = 0
    while True:
        count = orders_expire_due(batch_size=batch_size)
        total += count
        if count < batch_size:
            return total
