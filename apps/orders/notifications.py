"""Telling the shopper: a push to the order's open pages (WebSocket group) and an email."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from celery import shared_task
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.mail import EmailMessage, get_connection, send_mail
from django.db import transaction

from apps.core.transient import TRANSIENT_ERRORS

from .models import Order

logger = logging.getLogger(__name__)

SUBJECTS = {
    "paid": "Payment received: your order is confirmed",
    "declined": "Your card was declined",
    "expired": "Your reservation expired",
    "refunded": "Your payment was refunded",
    "failed": "We could not complete your payment",
}


def order_group(order_id: object) -> str:
    """The channel-layer group of one order's open pages (any app's consumer may join it)."""
    return f"order.{order_id}"


def order_notify(*, order_id: object, event: str, detail: str = "") -> None:
    """Push and mail one order event. Called after commit; never raises."""
    try:
        order = Order.objects.select_related("user").get(id=order_id)
    except Exception:  # noqa: BLE001
        logger.exception("notify: order %s unreadable", order_id)
        return
    message = {
        "type": "order.update",
        "order_id": str(order.id),
        "status": order.status,
        "event": event,
        "detail": detail or order.status_reason,
    }
    try:
        async_to_sync(get_channel_layer().group_send)(order_group(order.id), message)
    except Exception:  # noqa: BLE001 - a push is best effort; the page also polls
        logger.warning("notify: push for order %s failed", order_id, exc_info=True)
    if order.user.email:
        try:
            send_mail(
                SUBJECTS.get(event, f"Order update: {event}"),
                f"Order {order.id}: {order.status.lower()}.\n{detail or order.status_reason}\n\n"
                f"{settings.SITE_URL}/orders/{order.id}/",
                settings.DEFAULT_FROM_EMAIL,
                [order.user.email],
            )
        except Exception:  # noqa: BLE001
            logger.warning("notify: email for order %s failed", order_id, exc_info=True)


def order_notify_on_commit(*, order_id: object, event: str, detail: str = "") -> None:
    transaction.on_commit(lambda: order_notify(order_id=order_id, event=event, detail=detail))


def orders_notify(*, order_ids: list, event: str) -> int:
    """Push and mail one event to many orders: one query, one event loop for the pushes,
    one mail connection. Never raises."""
    orders = list(Order.objects.select_related("user").filter(id__in=order_ids))
    messages = [
        (
            order_group(o.id),
            {
                "type": "order.update",
                "order_id": str(o.id),
                "status": o.status,
                "event": event,
                "detail": o.status_reason,
            },
        )
        for o in orders
    ]

    async def push_all():
        layer = get_channel_layer()
        for group, message in messages:
            await layer.group_send(group, message)

    try:
        async_to_sync(push_all)()
    except Exception:  # noqa: BLE001
        logger.warning("notify: pushes for %s orders failed", len(orders), exc_info=True)
    mails = [
        EmailMessage(
            SUBJECTS.get(event, f"Order update: {event}"),
            f"Order {o.id}: {o.status.lower()}.\n{o.status_reason}\n\n"
            f"{settings.SITE_URL}/orders/{o.id}/",
            settings.DEFAULT_FROM_EMAIL,
            [o.user.email],
        )
        for o in orders
        if o.user.email
    ]
    try:
        get_connection().send_messages(mails)
    except Exception:  # noqa: BLE001
        logger.warning("notify: emails for %s orders failed", len(mails), exc_info=True)
    return len(orders)


def orders_notify_later(*, order_ids: list, event: str) -> None:
    """After commit, one task for the whole batch (inline if the broker is unreachable)."""
    ids = [str(i) for i in order_ids]

    def enqueue():
        try:
            notify_orders.delay(ids, event)
        except Exception:  # noqa: BLE001
            orders_notify(order_ids=ids, event=event)

    transaction.on_commit(enqueue)


# The task sits beside its sender (tasks.py imports the expiry that sends it). Its name is
# kept from when it lived in payments, so messages already queued still find it.
@shared_task(
    name="payments.notify_orders",
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=10,
    ignore_result=True,
)
def notify_orders(order_ids: list[str], event: str) -> int:
    return orders_notify(order_ids=order_ids, event=event)
