"""Group commit: purchases waiting at the same moment become orders in one transaction, each
with its own outcome; a refused hold never takes the others down with it, and nothing is
answered 201 that was not committed."""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from apps.core.errors import ApplicationError
from apps.core.testing.waiting import wait_for
from apps.inventory.audit import sale_audit
from apps.inventory.keys import sale_keys
from apps.inventory.models import SaleBuyer
from apps.orders.models import Order
from apps.orders.services import order_reserve
from apps.sales.selectors import sale_snapshot

pytestmark = pytest.mark.django_db(transaction=True)
SHOPPERS = 12


@pytest.fixture(autouse=True)
def _patient_queue(settings):
    """These tests hold the groups up on purpose: the queue waits for as long as they do."""
    settings.DB_POOL_TIMEOUT = 60


def _dsn() -> str:
    db = settings.DATABASES["default"]
    return "postgresql://{}@{}:{}/{}".format(
        db["USER"], db["HOST"] or "127.0.0.1", db["PORT"] or 5432, db["NAME"]
    )


def _holds_taken(redis_client, sale, count: int, what: str) -> None:
    """Wait until ``count`` holds of the sale are taken in Redis (waiting on PostgreSQL)."""
    pending = sale_keys(sale.id).pending
    wait_for(lambda: redis_client.hlen(pending) == count, timeout=30, interval=0.02, what=what)


@contextmanager
def _units_locked(sale):
    """Another transaction holds every unit row of the sale (its leader's statement blocks on
    them) until the caller rolls it back or the block ends."""
    locker = psycopg.connect(_dsn())
    try:
        locker.execute("SELECT 1 FROM inventory_unit WHERE sale_id = %s FOR UPDATE", [sale.id])
        yield locker
    finally:
        locker.close()


def _reserve(snapshot, shopper):
    """One purchase on a thread of its own: its Reservation, or the ApplicationError."""
    try:
        return order_reserve(
            sale=snapshot, user_id=shopper.id, quantity=1, idempotency_key=uuid.uuid4().hex
        )
    except ApplicationError as error:
        return error
    finally:
        connection.close()


def _purchases_queued_behind_locked_units(sale, shoppers, redis_client):
    """Start one purchase per shopper while another transaction holds every unit row: the
    first group's leader blocks on them, the others queue behind it; then let go. Returns
    each shopper's status code."""
    snapshot = sale_snapshot(str(sale.id))

    def attempt(shopper):
        outcome = _reserve(snapshot, shopper)
        if isinstance(outcome, ApplicationError):
            return outcome.status
        return 201 if outcome.created else 200

    with _units_locked(sale) as locker, ThreadPoolExecutor(max_workers=len(shoppers)) as pool:
        futures = [pool.submit(attempt, shopper) for shopper in shoppers]
        # Every hold is taken in Redis (the purchases wait on PostgreSQL), then release.
        _holds_taken(redis_client, sale, len(shoppers), "every hold")
        time.sleep(0.2)
        locker.rollback()
        return [future.result(timeout=60) for future in futures]


def _transactions(sale) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(DISTINCT xmin::text) FROM orders_order WHERE sale_id = %s", [sale.id]
        )
        return cursor.fetchone()[0]


@pytest.mark.parametrize("leaders", [1, 4])
def test_purchases_waiting_together_commit_in_one_transaction(
    make_sale, make_shopper, redis_client, settings, leaders
):
    settings.ORDER_GROUP_COMMIT_LEADERS = leaders
    sale = make_sale(inventory=SHOPPERS * 2)
    shoppers = [make_shopper() for _ in range(SHOPPERS)]

    codes = _purchases_queued_behind_locked_units(sale, shoppers, redis_client)

    assert codes == [201] * SHOPPERS
    assert Order.objects.filter(sale=sale).count() == SHOPPERS
    # The groups blocked first (a leader's own hold, or a few) and the groups the waiting
    # holds made behind them: a handful of transactions, not one per purchase.
    assert _transactions(sale) <= 2 * leaders + 1
    keys = sale_keys(sale.id)
    assert redis_client.zcard(keys.inflight) == 0 and redis_client.hlen(keys.pending) == 0
    assert sale_audit(sale_id=sale.id).clean


def test_a_refused_hold_in_a_group_is_refused_alone(make_sale, make_shopper, redis_client):
    sale = make_sale(inventory=SHOPPERS * 2, max_per_user=1)
    shoppers = [make_shopper() for _ in range(SHOPPERS)]
    # PostgreSQL knows the last shopper already holds their limit; Redis does not.
    SaleBuyer.objects.create(sale=sale, user=shoppers[-1], units_held=1, max_units=1)

    codes = _purchases_queued_behind_locked_units(sale, shoppers, redis_client)

    assert codes == [201] * (SHOPPERS - 1) + [409]
    assert set(Order.objects.filter(sale=sale).values_list("user_id", flat=True)) == {
        s.id for s in shoppers[:-1]
    }
    keys = sale_keys(sale.id)
    assert redis_client.scard(keys.free) == SHOPPERS * 2 - (SHOPPERS - 1)  # its unit is back
    assert redis_client.hlen(keys.pending) == 0


def test_without_grouping_the_same_purchases_succeed(
    make_sale, make_shopper, redis_client, settings
):
    settings.ORDER_GROUP_COMMIT = False
    sale = make_sale(inventory=4)
    shoppers = [make_shopper() for _ in range(4)]

    codes = _purchases_queued_behind_locked_units(sale, shoppers, redis_client)

    assert codes == [201] * 4
    assert _transactions(sale) == 4
    assert sale_audit(sale_id=sale.id).clean


def test_the_confirm_reaches_a_redis_that_lost_its_scripts(
    make_sale, make_shopper, redis_client, monkeypatch, tmp_path
):
    """The confirm calls its scripts by SHA without asking first whether Redis has them; a
    restarted Redis answers NOSCRIPT, and the confirm is sent again with the scripts loaded:
    the hold is forgotten as in flight and the admission finished all the same."""
    from apps.core.lua import LuaScript
    from apps.orders.services.group_commit import holds_confirm
    from apps.orders.services.reservations import Hold
    from apps.waiting_room import redis_scripts as room_scripts
    from apps.waiting_room.keys import room_keys

    sale = make_sale(inventory=2)
    shopper = make_shopper()
    keys, room = sale_keys(sale.id), room_keys(sale.id)
    order_id = str(uuid.uuid4())
    redis_client.zadd(keys.inflight, {order_id: 1})
    redis_client.hset(keys.pending, order_id, f"{shopper.id}|1|0||")
    redis_client.hset(room.claims, shopper.id, "jti|9999999999|a")
    redis_client.zadd(room.live, {shopper.id: 1})
    redis_client.hset(room.state, "active", 1)
    # The finish script as a Redis that never saw it (SCRIPT FLUSH is not ours to send).
    unseen = tmp_path / "finish.lua"
    unseen.write_text(room_scripts.FINISH.script + f"\n-- {uuid.uuid4()}\n")
    monkeypatch.setattr(room_scripts, "FINISH", LuaScript(unseen))
    hold = Hold(
        sale=sale_snapshot(str(sale.id)),
        user_id=shopper.id,
        quantity=1,
        idempotency_key="k",
        order_id=order_id,
        units=[0],
        admission_key=room.admission_used("jti"),
    )

    holds_confirm([hold])

    assert redis_client.zcard(keys.inflight) == 0 and redis_client.hlen(keys.pending) == 0
    assert redis_client.hget(room.claims, shopper.id).decode().startswith("jti|9999999999|d|")
    assert redis_client.zcard(room.live) == 0
    assert int(redis_client.hget(room.state, "active")) == 0


def test_a_purchase_waits_for_its_groups_turn_no_longer_than_for_a_connection(
    make_sale, make_shopper, redis_client, settings
):
    """One group commits at a time; while it is stuck (here behind a row lock), the purchase
    queued for the next group gives up after DB_POOL_TIMEOUT: 503, its hold given back. The
    stuck one completes when the lock goes."""
    settings.ORDER_GROUP_COMMIT_LEADERS = 1
    settings.DB_POOL_TIMEOUT = 0.3
    sale = make_sale(inventory=4)
    first, second = make_shopper(), make_shopper()
    snapshot = sale_snapshot(str(sale.id))
    keys = sale_keys(sale.id)

    def attempt(shopper):
        outcome = _reserve(snapshot, shopper)
        if isinstance(outcome, ApplicationError):
            return outcome.code, outcome.status
        return outcome.created

    with _units_locked(sale) as locker, ThreadPoolExecutor(max_workers=2) as pool:
        stuck = pool.submit(attempt, first)
        _holds_taken(redis_client, sale, 1, "the first hold")
        started = time.monotonic()
        assert pool.submit(attempt, second).result(timeout=30) == (
            "database_unavailable",
            503,
        )
        assert time.monotonic() - started < 5
        assert redis_client.hlen(keys.pending) == 1  # the second hold went back
        assert redis_client.scard(keys.free) == 3
        locker.rollback()
        assert stuck.result(timeout=30) is True
    assert list(Order.objects.filter(sale=sale).values_list("user_id", flat=True)) == [first.id]
    assert sale_audit(sale_id=sale.id).clean
