"""Celery tasks: take ids, call one service. The charge is idempotent by the gateway key,
so it is acked late and requeued if its worker dies mid-charge. Retries are declared on the
tasks: transient database, broker and Redis errors, and a gateway that failed or timed out,
are retried with Celery's exponential backoff and full jitter; reconciliation stays the
safety net for whatever outlives the retries."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from apps.core.transient import TRANSIENT_ERRORS

from . import services
from .gateways.base import GatewayError, GatewayRejected


class ChargeNotSettled(Exception):
    """The gateway failed or timed out on this attempt: run the charge again (same key)."""


@shared_task(
    bind=True,
    name=services.CHARGE_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(*TRANSIENT_ERRORS, ChargeNotSettled),
    retry_backoff=True,  # 1 s doubling
    retry_backoff_max=max(1, int(settings.PAYMENT_RETRY_CAP_SECONDS)),
    retry_jitter=True,
    # Gateway attempts are bounded on the payment row (PAYMENT_MAX_ATTEMPTS, then a dead
    # letter) and circuit waits by the reservation; this bounds a database that stays away.
    max_retries=100,
    ignore_result=True,
)
def charge_payment(self, payment_id: str, gateway: str | None = None) -> str:
    result = services.payment_charge_attempt(payment_id=payment_id, gateway=gateway)
    if result.outcome == "retry":
        if result.retry_in is not None:  # the circuit is open: come back when it may close
            raise self.retry(countdown=result.retry_in)
        raise ChargeNotSettled(result.detail)
    return result.outcome


@shared_task(
    bind=True,
    name=services.REFUND_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(*TRANSIENT_ERRORS, GatewayError, GatewayRejected),
    retry_backoff=1,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=20,
    ignore_result=True,
)
def refund_payment(self, payment_id: str) -> bool:
    return services.payment_refund(payment_id=payment_id)


# The periodic jobs are not retried: beat runs them again.
@shared_task(name="payments.reconcile", ignore_result=True)
def reconcile_payments() -> dict:
    return services.payments_reconcile().actions


@shared_task(name="payments.process_dead_letters", ignore_result=True)
def process_dead_letters() -> dict:
    return services.dead_letters_process()
