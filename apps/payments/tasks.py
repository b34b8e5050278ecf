"""Celery tasks: take ids, call one service. The charge is idempotent by the gateway key,
so it is acked late and requeued if its worker dies mid-charge."""

from __future__ import annotations

from celery import shared_task

from . import services
from .gateways.base import GatewayError, GatewayRejected


@shared_task(
    bind=True,
    name="payments.charge",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # attempts are counted on the payment row (PAYMENT_MAX_ATTEMPTS)
    ignore_result=True,
)
def charge_payment(self, payment_id: str, gateway: str | None = None) -> str:
    result = services.payment_charge_attempt(payment_id=payment_id, gateway=gateway)
    if result.outcome == "retry":
        raise self.retry(countdown=result.retry_in, max_retries=None)
    return result.outcome


@shared_task(
    bind=True,
    name="payments.refund",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(GatewayError, GatewayRejected),
    retry_backoff=1,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=20,
    ignore_result=True,
)
def refund_payment(self, payment_id: str) -> bool:
    return services.payment_refund(payment_id=payment_id)


@shared_task(name="payments.reconcile", ignore_result=True)
def reconcile_payments() -> dict:
    return services.payments_reconcile().actions


@shared_task(name="payments.process_dead_letters", ignore_result=True)
def process_dead_letters() -> dict:
    return services.dead_letters_process()


@shared_task(name="payments.notify_orders", ignore_result=True)
def notify_orders(order_ids: list[str], event: str) -> int:
    from .notifications import orders_notify

    return orders_notify(order_ids=order_ids, event=event)
