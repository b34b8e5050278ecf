"""A process refuses purchases of a sale it knows sold out by itself, and that knowledge can
never refuse a replay: units that come back wait until no process remembers the sale sold
out, and after a rebuild the holders are trusted only once restored (services/sold_out.py)."""

import json
import uuid

import pytest

from apps.core.testing.waiting import wait_for
from apps.inventory import redis_scripts
from apps.inventory.keys import sale_keys
from apps.inventory.services import inventory_rebuild
from apps.orders.models import Order, OrderStatus
from apps.orders.services import order_transition
from apps.orders.services.sold_out import sale_known_sold_out
from conftest import admitted

pytestmark = pytest.mark.django_db


def purchase(client, sale, authorization, key=None):
    return client.post(
        f"/api/v1/flash_sales/{sale.id}/purchase",
        data=json.dumps({"quantity": 1}),
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY=key or uuid.uuid4().hex,
        HTTP_AUTHORIZATION=authorization,
    )


def snapshot(sale, holders_known=-1):
    return redis_scripts.sold_out_snapshot(
        sale_keys(sale.id), memory_ms=60_000, holders_known=holders_known
    )


def test_the_snapshot_names_the_holders_and_sends_them_only_when_they_changed(
    client, make_sale, make_shopper
):
    sale = make_sale(inventory=2)
    alice, bob = make_shopper(), make_shopper()
    assert purchase(client, sale, admitted(alice, sale)["HTTP_AUTHORIZATION"]).status_code == 201
    assert snapshot(sale).state == "AVAILABLE"
    assert purchase(client, sale, admitted(bob, sale)["HTTP_AUTHORIZATION"]).status_code == 201

    sold_out = snapshot(sale)
    assert sold_out.state == "SOLD_OUT" and sold_out.valid_ms == 60_000
    assert sold_out.holders == {alice.id, bob.id} and sold_out.holders_count == 2
    again = snapshot(sale, holders_known=2)
    assert again.holders is None and again.holders_count == 2


def test_units_that_come_back_wait_until_no_process_remembers_the_sale_sold_out(
    client, make_sale, make_shopper, settings, redis_client, django_capture_on_commit_callbacks
):
    settings.SOLD_OUT_MEMORY_SECONDS = 0.5
    sale = make_sale(inventory=1)
    alice, bob = make_shopper(), make_shopper()
    first = purchase(client, sale, admitted(alice, sale)["HTTP_AUTHORIZATION"])
    assert first.status_code == 201, first.content
    bobs = admitted(bob, sale)["HTTP_AUTHORIZATION"]
    assert purchase(client, sale, bobs).status_code == 410
    assert sale_known_sold_out(str(sale.id))  # refusals are now the process's alone

    # Alice's card is declined: her unit goes back to the empty pool, and waits.
    with django_capture_on_commit_callbacks(execute=True):
        order_transition(
            order_id=first.json()["order_id"],
            from_status=OrderStatus.RESERVED,
            to_status=OrderStatus.CANCELLED,
            reason="card declined",
        )
    keys = sale_keys(sale.id)
    assert snapshot(sale).state == "AVAILABLE"  # the unit is in the pool, not for sale yet
    assert 0 < redis_client.pttl(keys.restock) <= 600  # longer than any memory (0.5 s)
    refused = purchase(client, sale, bobs)
    assert refused.status_code == 410 and refused.json()["error"] == "sold_out"

    # Bob buys it once the delay has passed, and by then no memory names the sale sold out;
    # his retry is his order.
    bought = {}

    def bob_buys():
        key = uuid.uuid4().hex
        response = purchase(client, sale, bobs, key)
        if response.status_code == 201:
            bought.update(key=key, body=response.json())
            assert not sale_known_sold_out(str(sale.id))
            return True
        assert response.status_code == 410, response.content
        return False

    wait_for(bob_buys, timeout=5, interval=0.05)
    replay = purchase(client, sale, bobs, bought["key"])
    assert replay.status_code == 200 and replay.json() == bought["body"]
    assert Order.objects.filter(status=OrderStatus.RESERVED).count() == 1


def test_after_a_rebuild_the_holders_are_trusted_only_once_restored(
    client, make_sale, make_shopper, redis_client
):
    sale = make_sale(inventory=1)
    alice = make_shopper()
    alices = admitted(alice, sale)["HTTP_AUTHORIZATION"]
    first = purchase(client, sale, alices, "K")
    assert first.status_code == 201
    keys = sale_keys(sale.id)
    assert snapshot(sale).holders == {alice.id}

    # Redis loses the sale's keys; until the records are restored nothing is trusted.
    redis_client.delete(keys.free, keys.primed, keys.buyers, keys.holders, keys.holders_ready)
    redis_client.delete(keys.idempotency(alice.id, "K"))
    assert snapshot(sale).state == "UNKNOWN"
    redis_client.sadd(keys.staged_free, 0)  # a half-done rebuild: swapped, not restored
    redis_scripts.swap_rebuilt(keys, generation="g", units_were_sold=True)
    assert snapshot(sale).state == "UNKNOWN"

    assert inventory_rebuild(sale_id=sale.id) == 0  # PostgreSQL: the one unit is Alice's
    after = snapshot(sale)
    assert after.state == "SOLD_OUT" and after.holders == {alice.id}
    replay = purchase(client, sale, alices, "K")
    assert replay.status_code == 200 and replay.json()["order_id"] == first.json()["order_id"]
