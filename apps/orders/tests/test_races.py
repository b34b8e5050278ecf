"""Concurrency: real threads, each with its own PostgreSQL connection, against real Redis."""

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from apps.core.errors import ApplicationError
from apps.inventory.audit import sale_audit
from apps.orders.models import HOLDING_STATUSES, Order
from apps.orders.services import order_reserve
from apps.sales.selectors import sale_snapshot

pytestmark = pytest.mark.django_db(transaction=True)
THREADS = 32  # the shared PostgreSQL allows 100 connections in all


def race(attempts, threads=THREADS, during=None):
    """Run reserve attempts (sale, user_id, quantity, key) at once; return status codes."""
    start = threading.Barrier(min(threads, len(attempts)))

    def attempt(args):
        sale, user_id, quantity, key = args
        try:
            try:
                start.wait(timeout=10)
            except threading.BrokenBarrierError:
                pass
            if during is not None:
                during()
            reservation = order_reserve(
                sale=sale, user_id=user_id, quantity=quantity, idempotency_key=key
            )
            return 201 if reservation.created else 200
        except ApplicationError as error:
            return error.status
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(attempt, attempts))


def test_200_buyers_race_for_10_units(make_sale, make_shopper):
    sale = make_sale(inventory=10)
    snapshot = sale_snapshot(str(sale.id))
    buyers = [make_shopper() for _ in range(200)]
    codes = Counter(race([(snapshot, b.id, 1, "k") for b in buyers]))
    assert codes == {201: 10, 410: 190}
    assert Order.objects.filter(sale=sale, status__in=HOLDING_STATUSES).count() == 10
    assert sale_audit(sale_id=sale.id).clean


def test_200_buyers_race_for_the_last_unit(make_sale, make_shopper):
    sale = make_sale(inventory=1)
    snapshot = sale_snapshot(str(sale.id))
    buyers = [make_shopper() for _ in range(200)]
    codes = Counter(race([(snapshot, b.id, 1, "k") for b in buyers]))
    assert codes == {201: 1, 410: 199}
    assert Order.objects.filter(sale=sale).count() == 1
    assert sale_audit(sale_id=sale.id).clean


@pytest.mark.parametrize("max_per_user", [1, 3])
def test_one_shopper_racing_20_requests_gets_max_per_user(make_sale, shopper, max_per_user):
    sale = make_sale(inventory=50, max_per_user=max_per_user)
    snapshot = sale_snapshot(str(sale.id))
    codes = Counter(race([(snapshot, shopper.id, 1, f"k{i}") for i in range(20)], threads=20))
    assert codes[201] == max_per_user
    assert codes[409] == 20 - max_per_user
    held = sum(o.quantity for o in Order.objects.filter(sale=sale, user=shopper))
    assert held == max_per_user
    assert sale_audit(sale_id=sale.id).clean


def test_redis_flushed_mid_race_never_oversells(private_redis, make_sale, make_shopper):
    """FLUSHDB of the test's own Redis while 200 buyers race: Redis forgets every hold and
    rebuilds from PostgreSQL; PostgreSQL alone keeps the limits."""
    sale = make_sale(inventory=10, max_per_user=2)
    snapshot = sale_snapshot(str(sale.id))
    buyers = [make_shopper() for _ in range(100)]
    attempts = [(snapshot, b.id, 1, f"k{n}") for b in buyers for n in range(2)]
    flushed = threading.Event()
    calls = Counter()
    lock = threading.Lock()

    def flush_once_midway():
        with lock:
            calls["n"] += 1
            due = calls["n"] == 40 and not flushed.is_set()
            if due:
                flushed.set()
        if due:
            private_redis.flushdb()

    codes = Counter(race(attempts, during=flush_once_midway))
    assert flushed.is_set()
    holding = Order.objects.filter(sale=sale, status__in=HOLDING_STATUSES)
    assert sum(o.quantity for o in holding) <= 10
    per_user = Counter(o.user_id for o in holding)
    assert max(per_user.values()) <= 2
    assert codes[201] == holding.count()
    assert 500 not in codes
    # Reconciliation brings Redis back in line with PostgreSQL; the audit is then clean.
    from apps.inventory.reconcile import holds_sweep_orphans, inventory_reconcile

    holds_sweep_orphans(sale_id=sale.id, grace_seconds=0)
    inventory_reconcile(sale_id=sale.id)
    report = sale_audit(sale_id=sale.id)
    assert report.clean, report.render()


def test_same_idempotency_key_raced_makes_one_order(make_sale, shopper):
    sale = make_sale(inventory=10)
    snapshot = sale_snapshot(str(sale.id))
    key = uuid.uuid4().hex
    codes = Counter(race([(snapshot, shopper.id, 1, key)] * 10, threads=10))
    assert codes[201] == 1
    assert Order.objects.filter(user=shopper).count() == 1
    # The others replayed it (200) or were told it is still in progress (409).
    assert set(codes) <= {200, 201, 409}
