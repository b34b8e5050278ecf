import pytest

from apps.inventory.audit import sale_audit
from apps.inventory.keys import sale_keys
from apps.inventory.reconcile import holds_sweep_orphans, inventory_reconcile
from apps.inventory.services import units_left
from apps.orders.models import Order
from apps.orders.services import order_reserve
from apps.sales.selectors import sale_snapshot

pytestmark = pytest.mark.django_db(transaction=True)


def test_reconcile_restores_lost_units_and_removes_phantom_ones(make_sale, shopper, redis_client):
    sale = make_sale(inventory=5)
    order_reserve(
        sale=sale_snapshot(str(sale.id)), user_id=shopper.id, quantity=1, idempotency_key="k"
    )
    keys = sale_keys(sale.id)
    free = sorted(int(u) for u in redis_client.smembers(keys.free))
    held = ({0, 1, 2, 3, 4} - set(free)).pop()
    redis_client.srem(keys.free, free[0], free[1])  # two free units lost
    redis_client.sadd(keys.free, held)  # a held unit looks free
    redis_client.hdel(keys.buyers, shopper.id)  # and the shopper's tally is gone
    assert not sale_audit(sale_id=sale.id).clean
    report = inventory_reconcile(sale_id=sale.id)
    assert (report.units_added, report.units_removed, report.buyers_fixed) == (2, 1, 1)
    assert units_left(sale_id=sale.id) == 4
    assert sale_audit(sale_id=sale.id).clean
    assert inventory_reconcile(sale_id=sale.id).corrections == 0  # idempotent


def test_reconcile_rebuilds_a_missing_pool(make_sale, redis_client):
    sale = make_sale(inventory=7)
    keys = sale_keys(sale.id)
    redis_client.delete(keys.free, keys.primed, keys.buyers)
    report = inventory_reconcile(sale_id=sale.id)
    assert report.rebuilt
    assert units_left(sale_id=sale.id) == 7


def test_orphan_hold_is_given_back_after_the_grace(make_sale, shopper, redis_client):
    """A crash between the Redis hold and the PostgreSQL insert leaves an orphan hold."""
    from apps.inventory import redis_scripts

    sale = make_sale(inventory=3)
    snap = sale_snapshot(str(sale.id))
    keys = sale_keys(sale.id)
    result = redis_scripts.reserve(
        keys,
        user_id=shopper.id,
        quantity=1,
        max_per_user=1,
        fingerprint="f",
        idempotency_key="crash",
        idempotency_ttl=60,
        starts_ms=snap.starts_ms,
        ends_ms=snap.ends_ms,
        order_id="00000000-0000-0000-0000-000000000001",
    )
    assert result.outcome == "OK"
    assert units_left(sale_id=sale.id) == 2
    assert holds_sweep_orphans(sale_id=sale.id, grace_seconds=60) == 0  # still in grace
    assert holds_sweep_orphans(sale_id=sale.id, grace_seconds=0) == 1
    assert units_left(sale_id=sale.id) == 3
    assert holds_sweep_orphans(sale_id=sale.id, grace_seconds=0) == 0  # idempotent
    # The shopper may buy again: the tally went back too.
    body = order_reserve(sale=snap, user_id=shopper.id, quantity=1, idempotency_key="k2").body
    assert Order.objects.filter(id=body["order_id"]).exists()


def test_sweep_forgets_holds_that_did_reach_postgres(make_sale, shopper, redis_client):
    sale = make_sale(inventory=3)
    order_reserve(
        sale=sale_snapshot(str(sale.id)), user_id=shopper.id, quantity=1, idempotency_key="k"
    )
    keys = sale_keys(sale.id)
    order = Order.objects.get(user=shopper)
    # Simulate a crash after the commit but before the confirm.
    redis_client.zadd(keys.inflight, {str(order.id): 0})
    redis_client.hset(keys.pending, str(order.id), f"{shopper.id}|1|{order.units.get().number}")
    assert holds_sweep_orphans(sale_id=sale.id, grace_seconds=0) == 0
    assert redis_client.zcard(keys.inflight) == 0
    assert units_left(sale_id=sale.id) == 2
    assert sale_audit(sale_id=sale.id).clean


def test_postgres_failure_after_redis_hold_gives_the_hold_back(make_sale, shopper, redis_client):
    """The order insert fails (here: a user id that does not exist) → nothing is held."""
    from apps.core.errors import ApplicationError

    sale = make_sale(inventory=2)
    with pytest.raises(ApplicationError) as error:
        order_reserve(
            sale=sale_snapshot(str(sale.id)), user_id=999_999_999, quantity=1, idempotency_key="k"
        )
    assert error.value.status == 503
    assert units_left(sale_id=sale.id) == 2
    assert redis_client.zcard(sale_keys(sale.id).inflight) == 0
    assert not Order.objects.exists()
    assert sale_audit(sale_id=sale.id).clean


def test_rebuild_after_redis_lost_the_sale_restores_its_replay_records(
    make_sale, shopper, redis_client
):
    """Inventory's rebuild tells the layers above (inventory_rebuilt): orders puts its
    idempotency records back, so the shopper's retry replays the order, not a new one."""
    from apps.core.redis import sale_key

    sale = make_sale(inventory=3)
    snap = sale_snapshot(str(sale.id))
    first = order_reserve(sale=snap, user_id=shopper.id, quantity=1, idempotency_key="k").body
    lost = list(redis_client.scan_iter(match=sale_key(sale.id, "*")))
    redis_client.delete(*lost)  # Redis lost every key of the sale
    assert inventory_reconcile(sale_id=sale.id).rebuilt
    assert redis_client.exists(sale_keys(sale.id).idempotency(shopper.id, "k"))
    again = order_reserve(sale=snap, user_id=shopper.id, quantity=1, idempotency_key="k")
    assert not again.created
    assert again.body["order_id"] == first["order_id"]
    assert Order.objects.filter(user=shopper).count() == 1
