"""Reads of orders for the pages and the API."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Sum
from django.db.models.functions import Now
from django.db.models.query import QuerySet

from apps.core.times import isoformat_z

from .models import HOLDING_STATUSES, Order, OrderStatus


def order_summary(order: Order) -> dict:
    """One order as a page shows it: its status and the one link that matters now (pay
    while reserved, the receipt once paid, the order page always)."""
    page = f"{settings.SITE_URL}/orders/{order.id}/"
    paid = order.status in (OrderStatus.PAID, OrderStatus.FULFILLED)
    return {
        "order_id": str(order.id),
        "status": order.status.lower(),
        "quantity": order.quantity,
        "reservation_expires_at": isoformat_z(order.reserved_until),
        "order_url": page,
        "payment_url": page + "pay/" if order.status == OrderStatus.RESERVED else None,
        "receipt_url": page if paid else None,
    }


def shopper_sale_orders(*, sale_id: object, user_id: int, max_per_user: int) -> dict:
    """The shopper's orders in one sale (newest first), the one to show (a reservation or
    a paid order before one that ended), and whether they may queue again: only while the
    units their orders hold stay under the sale's limit."""
    orders = list(
        Order.objects.filter(sale_id=sale_id, user_id=user_id).order_by("-created_at")[:20]
    )
    holding = [o for o in orders if o.status in HOLDING_STATUSES]
    units_held = sum(o.quantity for o in holding)
    shown = next((o for o in holding if o.status == OrderStatus.RESERVED), None)
    shown = shown or (holding[0] if holding else (orders[0] if orders else None))
    return {
        "sale_id": str(sale_id),
        "order": order_summary(shown) if shown else None,
        "orders": [order_summary(o) for o in orders],
        "units_held": units_held,
        "max_per_user": max_per_user,
        "can_queue": units_held < max_per_user,
    }


def orders_of_shopper(*, user_id: int) -> QuerySet[Order]:
    """The shopper's orders, newest first, with their sale and product."""
    return Order.objects.filter(user_id=user_id).select_related("sale__product")


def order_of_shopper(*, user_id: int, order_id: object) -> Order | None:
    """The shopper's own order, or None (someone else's order looks exactly like a missing one)."""
    return orders_of_shopper(user_id=user_id).filter(id=order_id).first()


def units_reserved_by_sale(sale_ids: list[str]) -> dict[str, int]:
    """Units held by reservations that may still expire and come back (from PostgreSQL)."""
    rows = (
        Order.objects.filter(sale_id__in=sale_ids, status="RESERVED", reserved_until__gt=Now())
        .values("sale_id")
        .annotate(units=Sum("quantity"))
    )
    return {str(row["sale_id"]): int(row["units"] or 0) for row in rows}


def orders_found(order_ids: list[str]) -> set[str]:
    """Which of these ids are orders in PostgreSQL (for inventory's orphan sweep)."""
    return {str(i) for i in Order.objects.filter(id__in=order_ids).values_list("id", flat=True)}
