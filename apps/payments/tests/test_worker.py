"""Integration: a REAL Celery worker process (prefork, RabbitMQ, acks_late) against a REAL
simulated gateway process, on this run's test database and Redis prefix."""

from __future__ import annotations

import os
import random
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Count

from apps.inventory.audit import sale_audit
from apps.orders.models import Order, OrderStatus
from apps.orders.services import order_reserve, orders_expire_all_due
from apps.payments.models import DeadLetter, Payment, PaymentStatus
from apps.payments.redis_scripts import breaker_snapshot
from apps.payments.services import dead_letters_process, payment_create, payments_reconcile
from apps.sales.selectors import sale_snapshot
from conftest import bearer

from .conftest import GatewayProcess, wait_for
from .test_services import DECLINED, OK, TIMEOUT_TWICE, window_closed

pytestmark = pytest.mark.django_db(transaction=True)


def statuses(ids) -> dict:
    return dict(Payment.objects.filter(id__in=ids).values_list("id", "status"))


def test_pay_through_the_api_and_the_worker(
    client, pay_settings, worker_factory, make_sale, reserve
):
    order = reserve(make_sale())
    worker_factory()
    headers = bearer(order.user)
    response = client.post(
        f"/api/v1/orders/{order.id}/pay",
        {"card_number": OK, "exp_month": "12", "exp_year": "2040", "cvc": "123"},
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY="checkout-1",
        **headers,
    )
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending"
    wait_for(
        lambda: Order.objects.get(id=order.id).status == OrderStatus.PAID,
        timeout=30,
        what="order paid by the worker",
    )
    body = client.get(f"/api/v1/orders/{order.id}", **headers).json()
    assert body["status"] == "paid" and body["payments"][0]["status"] == "succeeded"
    mails = wait_for(lambda: list(worker_factory.mail_dir.iterdir()), timeout=10, what="email")
    assert "confirmed" in mails[0].read_text()


def test_worker_killed_mid_charge_is_redelivered_and_charges_once(
    worker_factory, use_gateways, make_sale, reserve
):
    slow = GatewayProcess("killtest", "--latency-ms", "2000")
    slow.start()
    try:
        use_gateways(slow.url, timeout=6)  # tokenizing the card is slow too
        order = reserve(make_sale())
        worker = worker_factory(PAYMENT_GATEWAY_URL=slow.url, PAYMENT_GATEWAY_TIMEOUT=6)
        payment, _ = payment_create(order_id=order.id, user_id=order.user_id, card_number=OK)
        # The gateway has the request and is still working on it (1 to 3 s): kill now.
        wait_for(
            lambda: slow.attempts_of(payment.idempotency_key) >= 1,
            timeout=30,
            interval=0.05,
            what="the charge request to reach the gateway",
        )
        assert not payment.attempt_log.exists()  # no answer yet: the call is in flight
        worker.kill()
        killed_at = time.time()
        worker_factory(PAYMENT_GATEWAY_URL=slow.url, PAYMENT_GATEWAY_TIMEOUT=6)
        wait_for(
            lambda: Payment.objects.get(id=payment.id).status == PaymentStatus.SUCCEEDED,
            timeout=40,
            what="the redelivered charge to settle",
        )
        payment.refresh_from_db()
        assert payment.attempts >= 2  # the message was redelivered and run again
        charges = [c for c in slow.charges() if c["idempotency_key"] == payment.idempotency_key]
        assert len(charges) == 1  # charged exactly once
        assert charges[0]["id"] == payment.gateway_charge_id
        # The charge kept is the one the killed worker's request made.
        log = [
            (a.outcome, a.http_status, a.detail, a.created_at.timestamp() - killed_at)
            for a in payment.attempt_log.all()
        ]
        assert datetime.fromisoformat(charges[0]["created_at"]).timestamp() < killed_at + 3, (
            log,
            Path(slow.log.name).read_text()[-2000:],
        )
        assert Order.objects.get(id=order.id).status == OrderStatus.PAID
    finally:
        slow.stop()


def test_gateway_down_opens_the_circuit_and_payments_settle_after_recovery(
    worker_factory, make_sale, reserve, use_gateways
):
    """The gateway goes down once the cards are tokenized, for a while (past a failed
    half-open probe here instead of a minute: the breaker's open period is 2 s in this test):
    the circuit opens, payments wait, all settle after."""
    outage = GatewayProcess("outage")
    outage.start()
    use_gateways(outage.url)  # this process's audit asks the same gateway as the worker
    try:
        sale = make_sale(inventory=10)
        orders = [reserve(sale) for _ in range(8)]
        payments = [
            payment_create(order_id=o.id, user_id=o.user_id, card_number=OK)[0] for o in orders
        ]
        outage.stop()
        worker_factory(PAYMENT_GATEWAY_URL=outage.url)
        ids = [p.id for p in payments]
        wait_for(
            lambda: int(breaker_snapshot("primary").get("opened", 0)) >= 1,
            timeout=30,
            what="the circuit to open",
        )
        # The outage outlasts the open period: two more failures after the opening (each
        # opens the circuit again), at least one of them a half-open probe (the other may be
        # a call already in flight when it opened; the worker runs two at a time).
        at_opening = int(breaker_snapshot("primary")["failures"])
        wait_for(
            lambda: int(breaker_snapshot("primary").get("failures", 0)) >= at_opening + 2,
            timeout=30,
            what="two failed probes",
        )
        assert set(statuses(ids).values()) == {PaymentStatus.PENDING}  # queued, not failed
        assert all(Order.objects.get(id=o.id).status == OrderStatus.RESERVED for o in orders)
        outage.start()
        wait_for(
            lambda: set(statuses(ids).values()) == {PaymentStatus.SUCCEEDED},
            timeout=60,
            what="all payments to settle",
        )
        assert not breaker_snapshot("primary")  # closed again
        assert all(Order.objects.get(id=o.id).status == OrderStatus.PAID for o in orders)
        assert not DeadLetter.objects.exists()
        keys = {p.idempotency_key for p in payments}
        charges = [c for c in outage.charges() if c["idempotency_key"] in keys]
        assert len(charges) == len(keys)  # one charge per payment
        assert sale_audit(sale_id=sale.id).clean
    finally:
        outage.stop()


def _mix(n: int, worker_factory, make_sale, settings, use_gateways, gateway):
    """n reservations: 40 % pay, 20 % declined, 10 % time out then pay, 30 % abandon."""
    sale = make_sale(inventory=n, duration=timedelta(hours=2))
    User = get_user_model()
    users = User.objects.bulk_create(
        [User(username=f"mix-{uuid.uuid4().hex[:12]}", email="m@example.test") for _ in range(n)]
    )
    snapshot = sale_snapshot(str(sale.id))
    orders = []
    for user in users:
        body = order_reserve(
            sale=snapshot, user_id=user.id, quantity=1, idempotency_key=uuid.uuid4().hex
        ).body
        orders.append(body["order_id"])
    plan = ["pay"] * 4 + ["decline"] * 2 + ["timeout"] + ["abandon"] * 3
    kinds = [plan[i % 10] for i in range(n)]
    random.Random(4).shuffle(kinds)
    card = {"pay": OK, "decline": DECLINED, "timeout": TIMEOUT_TWICE}
    worker_factory()
    use_gateways(gateway.url)  # this process's jobs and audit use the worker's gateway
    user_of = dict(Order.objects.filter(id__in=orders).values_list("id", "user_id"))
    payment_ids = []
    for order_id, kind in zip(orders, kinds, strict=True):
        if kind != "abandon":
            payment, _ = payment_create(
                order_id=order_id, user_id=user_of[uuid.UUID(order_id)], card_number=card[kind]
            )
            payment_ids.append(payment.id)
    wait_for(
        lambda: (
            not Payment.objects.filter(id__in=payment_ids, status=PaymentStatus.PENDING).exists()
        ),
        timeout=60 + n * 0.3,
        interval=1.0,
        what="every payment to settle",
    )
    abandoned = [o for o, k in zip(orders, kinds, strict=True) if k == "abandon"]
    for order_id in abandoned:
        window_closed(Order(id=order_id), seconds_ago=1)
    # The periodic jobs, as beat runs them.
    orders_expire_all_due()
    payments_reconcile()
    dead_letters_process()
    call_command("audit_sale", str(sale.id))  # raises CommandError unless clean
    by_status = dict(Order.objects.filter(sale=sale).values_list("status").annotate(n=Count("id")))
    expected = {
        OrderStatus.PAID: kinds.count("pay") + kinds.count("timeout"),
        OrderStatus.CANCELLED: kinds.count("decline"),
        OrderStatus.EXPIRED: kinds.count("abandon"),
    }
    assert by_status == expected


def test_mixed_reservations_audit_clean(worker_factory, make_sale, settings, use_gateways, gateway):
    """100 in the suite; scripts/payments_mix_1000.sh runs the same test with 1,000."""
    size = int(os.environ.get("PAYMENT_MIX_SIZE", "100"))
    _mix(size, worker_factory, make_sale, settings, use_gateways, gateway)
