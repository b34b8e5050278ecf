"""One attempt of the charge task's body at a time, in this process, against a REAL
simulated gateway process and real PostgreSQL/Redis: each test card, each outcome."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from django.core import mail
from django.db import connection

from apps.inventory.models import Unit
from apps.inventory.services import units_left
from apps.orders.models import Order, OrderStatus
from apps.orders.services import orders_expire_all_due
from apps.payments.models import AttemptOutcome, DeadLetter, Payment, PaymentStatus
from apps.payments.services import (
    charge_metadata,
    dead_letters_process,
    payment_charge_attempt,
    payment_create,
    payments_reconcile,
)

from .conftest import GatewayProcess, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

OK, DECLINED, TIMEOUT_TWICE, ALWAYS_5XX, SLOW = (
    "4242424242424242",
    "4000000000000002",
    "4000000000009995",
    "4000000000000119",
    "4000000000003220",
)


def drive(payment_id, *, timeout: float = 30.0, gateway=None):
    """Run the task body like the worker does: again after each retry delay."""
    deadline = time.monotonic() + timeout
    outcomes = []
    while time.monotonic() < deadline:
        result = payment_charge_attempt(payment_id=payment_id, gateway=gateway)
        outcomes.append(result.outcome)
        if result.outcome != "retry":
            return outcomes
        # The task's backoff, shortened: the circuit's wait when known, else half a second.
        time.sleep(min(result.retry_in if result.retry_in is not None else 0.5, 3.0))
    raise AssertionError(f"payment did not settle: {outcomes}")


def pay(order, card):
    payment, created = payment_create(order_id=order.id, user_id=order.user_id, card_number=card)
    assert created
    return payment


def held_units(order):
    return Unit.objects.filter(order_id=order.id).count()


def test_card_4242_succeeds_and_the_order_is_paid(pay_settings, make_sale, reserve, gateway):
    sale = make_sale(inventory=3)
    order = reserve(sale)
    payment = pay(order, OK)
    assert drive(payment.id) == ["succeeded"]
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and order.status == OrderStatus.PAID
    assert order.paid_at is not None and held_units(order) == 1
    charge = gateway.charge_of(payment.idempotency_key)
    assert charge["status"] == "succeeded" and charge["id"] == payment.gateway_charge_id
    assert [a.outcome for a in payment.attempt_log.all()] == [AttemptOutcome.SUCCEEDED]
    assert mail.outbox and "confirmed" in mail.outbox[-1].subject
    # The task redelivered after success changes nothing.
    assert payment_charge_attempt(payment_id=payment.id).outcome == "skipped"


def test_card_0002_is_declined_and_the_reservation_released(pay_settings, make_sale, reserve):
    sale = make_sale(inventory=3)
    order = reserve(sale)
    assert units_left(sale_id=sale.id) == 2
    payment = pay(order, DECLINED)
    assert drive(payment.id) == ["declined"]
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED and payment.failure_code == "card_declined"
    assert order.status == OrderStatus.CANCELLED and "declined" in order.status_reason
    assert held_units(order) == 0
    assert units_left(sale_id=sale.id) == 3  # back in Redis too
    assert "declined" in mail.outbox[-1].subject


def test_decline_keeps_reservation_when_configured_then_another_card_pays(
    pay_settings, make_sale, reserve
):
    pay_settings.PAYMENT_DECLINE_RELEASES = False
    order = reserve(make_sale())
    first = pay(order, DECLINED)
    drive(first.id)
    order.refresh_from_db()
    assert order.status == OrderStatus.RESERVED
    second = pay(order, OK)
    drive(second.id)
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert Payment.objects.get(id=first.id).status == PaymentStatus.FAILED


def test_card_9995_times_out_twice_then_succeeds_with_one_key(
    pay_settings, make_sale, reserve, gateway
):
    order = reserve(make_sale())
    payment = pay(order, TIMEOUT_TWICE)
    assert drive(payment.id) == ["retry", "retry", "succeeded"]
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and payment.attempts == 3
    outcomes = [a.outcome for a in payment.attempt_log.filter(kind="charge")]
    assert outcomes == ["timeout", "timeout", "succeeded"]
    assert Order.objects.get(id=order.id).status == OrderStatus.PAID
    charges = [c for c in gateway.charges() if c["metadata"].get("payment_id") == str(payment.id)]
    assert len(charges) == 1


def test_card_0119_exhausts_retries_then_dead_letter_releases(
    pay_settings, make_sale, reserve, gateway
):
    pay_settings.PAYMENT_MAX_ATTEMPTS = 3
    pay_settings.PAYMENT_BREAKER_THRESHOLD = 100  # this test is about retries, not the breaker
    sale = make_sale(inventory=2)
    order = reserve(sale)
    payment = pay(order, ALWAYS_5XX)
    assert drive(payment.id) == ["retry", "retry", "dead_letter"]
    assert DeadLetter.objects.filter(payment=payment, processed_at__isnull=True).exists()
    assert Order.objects.get(id=order.id).status == OrderStatus.RESERVED  # still held
    assert dead_letters_process() == {"released": 1}
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == PaymentStatus.FAILED and payment.failure_code == "gateway_unavailable"
    assert order.status == OrderStatus.CANCELLED and held_units(order) == 0
    assert units_left(sale_id=sale.id) == 2
    assert dead_letters_process() == {}  # processed once
    assert gateway.charge_of(payment.idempotency_key) is None  # no money taken


def test_dead_letter_retries_on_the_backup_gateway(
    pay_settings, use_gateways, make_sale, reserve, gateway, backup_gateway
):
    use_gateways(gateway.url, backup_gateway.url)
    pay_settings.PAYMENT_MAX_ATTEMPTS = 2
    pay_settings.PAYMENT_BREAKER_THRESHOLD = 100
    order = reserve(make_sale())
    payment = pay(order, ALWAYS_5XX)
    drive(payment.id)
    assert dead_letters_process() == {"retry_on_backup": 1}
    payment.refresh_from_db()
    assert payment.gateway == "backup" and payment.status == PaymentStatus.PENDING
    # The backup fails too (this card always does): the second dead letter releases.
    drive(payment.id, gateway="backup")
    assert dead_letters_process() == {"released": 1}
    assert Order.objects.get(id=order.id).status == OrderStatus.CANCELLED


def test_a_charge_still_in_progress_is_not_counted_as_an_attempt(
    pay_settings, make_sale, reserve, gateway
):
    """The slow card outlives the client's timeout; the retries meanwhile get 409 (same key
    in progress). Those did not attempt anything: with only two attempts allowed the charge
    still settles, once, instead of going to the dead letters."""
    pay_settings.PAYMENT_MAX_ATTEMPTS = 2
    order = reserve(make_sale())
    payment = pay(order, SLOW)
    outcomes = drive(payment.id)
    assert outcomes[-1] == "succeeded" and outcomes.count("retry") >= 2, outcomes
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and payment.attempts <= 2
    assert not DeadLetter.objects.filter(payment_id=payment.id).exists()
    http = [a.http_status for a in payment.attempt_log.filter(kind="charge")]
    assert 409 in http, http


def test_card_3220_slow_success_settles_once(pay_settings, make_sale, reserve, gateway):
    order = reserve(make_sale())
    payment = pay(order, SLOW)
    outcomes = drive(payment.id)
    assert outcomes[-1] == "succeeded" and outcomes[0] == "retry"  # the client timed out first
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert Order.objects.get(id=order.id).status == OrderStatus.PAID
    assert gateway.charge_of(payment.idempotency_key)["id"] == payment.gateway_charge_id


def test_expiry_waits_for_a_charge_in_flight_up_to_the_bound(pay_settings, make_sale, reserve):
    order = reserve(make_sale())
    payment = pay(order, OK)  # PENDING: queued, not yet charged
    window_closed(order, seconds_ago=5)
    assert orders_expire_all_due() == 0
    assert Order.objects.get(id=order.id).status == OrderStatus.RESERVED
    drive(payment.id)  # the charge lands after reserved_until but within the bound
    assert Order.objects.get(id=order.id).status == OrderStatus.PAID


def test_expiry_does_not_wait_past_the_bound(pay_settings, make_sale, reserve):
    order = reserve(make_sale())
    pay(order, OK)
    window_closed(order, seconds_ago=pay_settings.PAYMENT_SETTLE_GRACE_SECONDS + 5)
    assert orders_expire_all_due() == 1
    assert Order.objects.get(id=order.id).status == OrderStatus.EXPIRED


def test_abandoned_reservation_expires_and_units_return(pay_settings, make_sale, reserve):
    sale = make_sale(inventory=2)
    order = reserve(sale)
    assert units_left(sale_id=sale.id) == 1
    window_closed(order, seconds_ago=1)
    assert orders_expire_all_due() == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED and held_units(order) == 0
    assert units_left(sale_id=sale.id) == 2
    from apps.orders.notifications import orders_notify

    assert orders_notify(order_ids=[order.id], event="expired") == 1  # the batch task's body
    assert "expired" in mail.outbox[-1].subject
    with pytest.raises(Exception) as refused:
        pay(order, OK)
    assert refused.value.status == 410


def test_success_after_expiry_is_refunded(pay_settings, make_sale, reserve, gateway):
    """The charge is slow; the reservation ends (past the bound) while it is in flight;
    the money that lands afterwards goes back and the order ends REFUNDED."""
    pay_settings.PAYMENT_PENDING_STALE_SECONDS = 0
    order = reserve(make_sale())
    payment = pay(order, SLOW)
    assert payment_charge_attempt(payment_id=payment.id).outcome == "retry"  # client timeout
    window_closed(order, seconds_ago=pay_settings.PAYMENT_SETTLE_GRACE_SECONDS + 5)
    assert orders_expire_all_due() == 1
    wait_for(  # the gateway finishes the slow charge
        lambda: (gateway.charge_of(payment.idempotency_key) or {}).get("status") == "succeeded",
        timeout=30,
        what="the gateway to finish the slow charge",
    )
    payments_reconcile()
    payment.refresh_from_db()
    order.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    assert order.status == OrderStatus.REFUNDED and order.refunded_at is not None
    charge = gateway.charge_of(payment.idempotency_key)
    assert charge["status"] == "succeeded" and charge["refunded"] is True
    assert held_units(order) == 0


def test_payment_succeeded_but_order_update_failed_is_reconciled(
    pay_settings, make_sale, reserve, gateway
):
    """The worker charged, then died before writing anything: reconciliation finds the
    gateway's success by key and marks the order PAID."""
    pay_settings.PAYMENT_PENDING_STALE_SECONDS = 0
    order = reserve(make_sale())
    payment = pay(order, OK)
    httpx.post(
        gateway.url + "/v1/charges",
        json={
            "amount": str(payment.amount),
            "card": OK,
            "idempotency_key": payment.idempotency_key,
            "metadata": charge_metadata(payment),  # what our worker sends
        },
    ).raise_for_status()
    report = payments_reconcile()
    assert report.actions.get("settled_paid") == 1
    assert Order.objects.get(id=order.id).status == OrderStatus.PAID
    assert Payment.objects.get(id=payment.id).status == PaymentStatus.SUCCEEDED
    assert payments_reconcile().actions == {}  # nothing left to do


def test_two_attempts_of_one_payment_at_once_charge_once(pay_settings, make_sale, reserve, gateway):
    order = reserve(make_sale())
    payment = pay(order, OK)

    def attempt(_):
        try:
            return drive(payment.id)[-1]
        finally:
            connection.close()

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(attempt, range(4)))
    assert "succeeded" in results
    assert Order.objects.get(id=order.id).status == OrderStatus.PAID
    charges = [c for c in gateway.charges() if c["idempotency_key"] == payment.idempotency_key]
    assert len(charges) == 1


def test_circuit_opens_and_the_backup_takes_over(
    pay_settings, use_gateways, make_sale, reserve, backup_gateway
):
    primary = GatewayProcess("circuit")
    primary.start()
    try:
        use_gateways(primary.url, backup_gateway.url)
        orders = [reserve(make_sale()) for _ in range(2)]
        payment = pay(orders[0], OK)  # the card is tokenized on both gateways
        second = pay(orders[1], OK)
    finally:
        primary.stop()  # then nothing listens: connection refused
    outcomes = drive(payment.id)
    assert outcomes[-1] == "succeeded"
    payment.refresh_from_db()
    assert payment.gateway == "backup" and payment.status == PaymentStatus.SUCCEEDED
    primary_calls = payment.attempt_log.filter(gateway="primary").count()
    assert primary_calls == pay_settings.PAYMENT_BREAKER_THRESHOLD  # then the circuit opened
    # While it is open, the next payment goes straight to the backup.
    assert drive(second.id) == ["succeeded"]
    assert Payment.objects.get(id=second.id).gateway == "backup"


def window_closed(order, *, seconds_ago: float) -> None:
    """Move the reservation window into the past by the database's clock."""
    Order.objects.filter(id=order.id).update(
        reserved_at=_now_minus(seconds_ago + 300), reserved_until=_now_minus(seconds_ago)
    )


def _now_minus(seconds: float):
    from django.db.models.functions import Now

    return Now() - timedelta(seconds=seconds)
