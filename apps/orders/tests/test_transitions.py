import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from apps.inventory.models import SaleBuyer, Unit
from apps.inventory.services import units_left
from apps.orders.models import Order, OrderStatus
from apps.orders.services import (
    IllegalTransition,
    TransitionLost,
    order_reserve,
    order_transition,
    orders_expire_due,
)
from apps.orders.services.transitions import TRANSITIONS
from apps.sales.selectors import sale_snapshot

S = OrderStatus


def reserve(sale, user, key="k"):
    body = order_reserve(
        sale=sale_snapshot(str(sale.id)), user_id=user.id, quantity=1, idempotency_key=key
    ).body
    return Order.objects.get(id=body["order_id"])


ILLEGAL = [(a, b) for a in S.values for b in S.values if b not in TRANSITIONS[a]]


@pytest.mark.django_db
@pytest.mark.parametrize("from_status, to_status", ILLEGAL)
def test_every_illegal_transition_is_refused(from_status, to_status, make_sale, shopper):
    sale = make_sale()
    order = reserve(sale, shopper)
    Order.objects.filter(id=order.id).update(status=from_status, paid_at="2026-01-01T00:00Z")
    with pytest.raises(IllegalTransition):
        order_transition(order_id=order.id, from_status=from_status, to_status=to_status)
    order.refresh_from_db()
    assert order.status == from_status


@pytest.mark.django_db
def test_transition_from_a_stale_status_is_lost(make_sale, shopper):
    sale = make_sale()
    order = reserve(sale, shopper)
    order_transition(order_id=order.id, from_status=S.RESERVED, to_status=S.PAID)
    with pytest.raises(TransitionLost):
        order_transition(order_id=order.id, from_status=S.RESERVED, to_status=S.EXPIRED)
    order.refresh_from_db()
    assert order.status == S.PAID and order.paid_at is not None


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_transitions_one_wins(make_sale, shopper):
    sale = make_sale(inventory=3)
    order = reserve(sale, shopper)
    barrier = threading.Barrier(2)

    def move(to_status):
        barrier.wait()
        try:
            order_transition(order_id=order.id, from_status=S.RESERVED, to_status=to_status)
            return to_status
        except TransitionLost:
            return None
        finally:
            connection.close()

    for _ in range(5):
        Order.objects.filter(id=order.id).update(status=S.RESERVED, paid_at=None)
        Unit.objects.filter(sale=sale, number=0).update(order=order)
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(move, [S.PAID, S.CANCELLED]))
        winners = [r for r in results if r]
        assert len(winners) == 1
        order.refresh_from_db()
        assert order.status == winners[0]


@pytest.mark.django_db(transaction=True)
def test_cancel_releases_units_in_postgres_and_redis(make_sale, shopper):
    sale = make_sale(inventory=2)
    order = reserve(sale, shopper)
    assert units_left(sale_id=sale.id) == 1
    order_transition(
        order_id=order.id, from_status=S.RESERVED, to_status=S.CANCELLED, reason="declined"
    )
    order.refresh_from_db()
    assert order.status == S.CANCELLED and order.status_reason == "declined"
    assert not Unit.objects.filter(order=order).exists()
    assert SaleBuyer.objects.get(sale=sale, user=shopper).units_held == 0
    assert units_left(sale_id=sale.id) == 2
    # The shopper may buy again once their reservation is gone.
    again = reserve(sale, shopper, key="second")
    assert again.status == S.RESERVED


@pytest.mark.django_db(transaction=True)
def test_expiry_uses_the_database_clock_and_returns_units(make_sale, make_shopper):
    sale = make_sale(inventory=3)
    due, fresh = reserve(sale, make_shopper()), reserve(sale, make_shopper())
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE orders_order SET reserved_at = now() - interval '10 minutes', "
            "reserved_until = now() - interval '1 second' WHERE id = %s",
            [due.id],
        )
    assert units_left(sale_id=sale.id) == 1
    assert orders_expire_due() == 1
    assert orders_expire_due() == 0  # safe to run again
    due.refresh_from_db()
    fresh.refresh_from_db()
    assert due.status == S.EXPIRED and due.expired_at is not None
    assert fresh.status == S.RESERVED
    assert units_left(sale_id=sale.id) == 2


@pytest.mark.django_db(transaction=True)
def test_two_expiry_jobs_at_once_expire_each_order_once(make_sale, make_shopper):
    sale = make_sale(inventory=40)
    orders = [reserve(sale, make_shopper()) for _ in range(40)]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE orders_order SET reserved_at = now() - interval '10 minutes', "
            "reserved_until = now() - interval '1 second' WHERE sale_id = %s",
            [sale.id],
        )

    def job(_):
        try:
            return orders_expire_due(batch_size=7)
        finally:
            connection.close()

    total = 0
    for _ in range(10):
        with ThreadPoolExecutor(2) as pool:
            total += sum(pool.map(job, range(2)))
    assert total == 40
    assert Order.objects.filter(id__in=[o.id for o in orders], status=S.EXPIRED).count() == 40
    assert units_left(sale_id=sale.id) == 40
