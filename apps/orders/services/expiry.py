"""Reservations past their window (by the database's clock) end EXPIRED, in batches."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection, transaction

from apps.core import metrics

from ..models import OrderStatus
from .transitions import TransitionLost, order_transition

logger = logging.getLogger(__name__)

# Extra SQL that must hold for an order to expire. A reservation whose charge is still in
# flight (a PENDING payment) is not expired under it: expiry waits for the payment to settle,
# up to PAYMENT_SETTLE_GRACE_SECONDS past reserved_until (the stated bound); a charge that
# succeeds after that is refunded.
EXPIRY_CONDITION = (
    "reserved_until < now() AND ("
    "reserved_until < now() - make_interval(secs => "
    f"{int(getattr(settings, 'PAYMENT_SETTLE_GRACE_SECONDS', 0))}) "
    "OR NOT EXISTS (SELECT 1 FROM payments_payment p "
    "WHERE p.order_id = orders_order.id AND p.status = 'PENDING'))"
)


def orders_expire_due(*, batch_size: int = 500) -> int:
    """Expire one batch of overdue reservations; safe to run concurrently (SKIP LOCKED)."""
    expired = 0
    expired_ids = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, EXTRACT(EPOCH FROM now() - reserved_until) FROM orders_order "
            "WHERE status = 'RESERVED' AND "
            + EXPIRY_CONDITION
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
                        extra_condition=EXPIRY_CONDITION,
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
    from apps.payments.notifications import orders_notify_later

    orders_notify_later(order_ids=order_ids, event="expired")


def orders_expire_all_due(*, batch_size: int = 500) -> int:
    total = 0
    while True:
        count = orders_expire_due(batch_size=batch_size)
        total += count
        if count < batch_size:
            return total
