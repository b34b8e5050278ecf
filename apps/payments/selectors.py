"""Reads for the payment API, the checkout page and the audit."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Prefetch

from apps.core.times import isoformat_z
from apps.orders.models import Order

from .models import Payment


def order_for_shopper(*, order_id: object, user_id: int) -> Order | None:
    """The shopper's own order with its payments, or None (others' orders do not exist)."""
    try:
        return (
            Order.objects.select_related("sale__product")
            .prefetch_related(
                Prefetch("payments", queryset=Payment.objects.order_by("-created_at"))
            )
            .filter(id=order_id, user_id=user_id)
            .first()
        )
    except (ValueError, TypeError):
        return None


def payment_body(payment: Payment) -> dict:
    return {
        "payment_id": str(payment.id),
        "status": payment.status.lower(),
        "amount": str(payment.amount),
        "currency": payment.currency,
        "card_brand": payment.card_brand,
        "card_last4": payment.card_last4,
        "attempts": payment.attempts,
        "failure_code": payment.failure_code or None,
        "failure_reason": payment.failure_reason or None,
        "created_at": isoformat_z(payment.created_at),
        "settled_at": isoformat_z(payment.settled_at),
    }


def order_body(order: Order) -> dict:
    return {
        "order_id": str(order.id),
        "sale_id": str(order.sale_id),
        "product": order.sale.product.name,
        "status": order.status.lower(),
        "status_reason": order.status_reason or None,
        "quantity": order.quantity,
        "amount": str(order.amount),
        "currency": order.currency,
        "reserved_at": isoformat_z(order.reserved_at),
        "reservation_expires_at": isoformat_z(order.reserved_until),
        "paid_at": isoformat_z(order.paid_at),
        "payments": [payment_body(p) for p in order.payments.all()],
    }


def expiry_waits_for_charge_in_flight() -> str:
    """SQL on an orders_order row, for expiry: a reservation whose charge is still in flight
    (a PENDING payment) does not expire; expiry waits for the payment to settle, up to
    PAYMENT_SETTLE_GRACE_SECONDS past reserved_until (the stated bound); a charge that
    succeeds after that is refunded. Read at every expiry run."""
    grace = int(settings.PAYMENT_SETTLE_GRACE_SECONDS)
    return (
        f"reserved_until < now() - make_interval(secs => {grace}) "
        "OR NOT EXISTS (SELECT 1 FROM payments_payment p "
        "WHERE p.order_id = orders_order.id AND p.status = 'PENDING')"
    )
