"""Chaos (issue 6): the payment gateway slowed to 10 s, then failing every request, then back,
while shoppers pay. Once the jobs have run, the audit is clean: every successful charge is
matched to exactly one PAID or REFUNDED order, no unit oversold or lost. The gateway
processes are the scenario's own (the shared machine has none); marker ``chaos``."""

from __future__ import annotations

import time

import pytest

from apps.inventory.audit import sale_audit
from apps.orders.models import Order, OrderStatus
from apps.orders.services import orders_expire_all_due
from apps.orders.tests.chaos_harness import say, scaled
from apps.payments.models import Payment, PaymentStatus
from apps.payments.services import dead_letters_process, payment_create, payments_reconcile

from .conftest import GatewayProcess, wait_for
from .test_services import OK

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]


def _phase(name: str, port: int, *extra: str) -> GatewayProcess:
    """The same gateway (name, ledger, port), restarted with other behaviour."""
    process = GatewayProcess("chaos", *extra)
    process.port = port
    process.start()
    say(f"gateway {name}")
    return process


def test_gateway_slowed_to_10s_then_failing_then_back(
    worker_factory, make_sale, reserve, use_gateways
):
    n = scaled(10, 60)
    first = GatewayProcess("chaos")
    first.start()
    use_gateways(first.url)  # this process's jobs and audit use the worker's gateway
    port = first.port
    current = first
    try:
        # The shoppers' cards go to the gateway (tokens) while it is healthy; the charges
        # then meet the slow, the failing and the recovered gateway.
        sale = make_sale(inventory=n + 2)
        orders = [reserve(sale) for _ in range(n)]
        payments = [
            payment_create(order_id=o.id, user_id=o.user_id, card_number=OK)[0] for o in orders
        ]
        first.stop()
        current = _phase("answering charges after ~10 s", port, "--latency-ms", "10000")
        say(f"the client gives up after 1 s; {n} shoppers pay")
        worker_factory(PAYMENT_GATEWAY_URL=current.url)
        ids = [p.id for p in payments]
        time.sleep(scaled(6, 15))
        pending = Payment.objects.filter(id__in=ids, status=PaymentStatus.PENDING).count()
        say(f"after the slow phase: {pending} of {n} payments still pending")
        current.stop()
        current = _phase("failing every request (503)", port, "--failure-rate", "1.0")
        time.sleep(scaled(5, 15))
        pending = Payment.objects.filter(id__in=ids, status=PaymentStatus.PENDING).count()
        say(f"after the failing phase: {pending} of {n} payments still pending")
        current.stop()
        current = _phase("healthy again", port)
        wait_for(
            lambda: not Payment.objects.filter(id__in=ids, status=PaymentStatus.PENDING).exists(),
            timeout=120,
            interval=0.5,
            what="every payment to settle",
        )
        # the periodic jobs, as beat runs them
        orders_expire_all_due()
        payments_reconcile()
        dead_letters_process()
        by_status = {}
        for order in Order.objects.filter(id__in=[o.id for o in orders]):
            by_status[order.status] = by_status.get(order.status, 0) + 1
        keys = {p.idempotency_key for p in Payment.objects.filter(id__in=ids)}
        charges = [
            c
            for c in current.charges()
            if c["idempotency_key"] in keys and c.get("status") == "succeeded"
        ]
        report = sale_audit(sale_id=sale.id)
        say(
            f"found: orders {by_status}, {len(charges)} successful charge(s) for {len(keys)} "
            f"payment key(s), audit {'clean' if report.clean else 'NOT CLEAN'}"
        )
        assert report.clean, report.render()
        assert len({c["idempotency_key"] for c in charges}) == len(charges)  # once per key
        paid_or_refunded = sum(
            by_status.get(s, 0) for s in (OrderStatus.PAID, OrderStatus.REFUNDED)
        )
        assert paid_or_refunded == len(charges)
    finally:
        current.stop()
        first.stop()
