"""A retried purchase always gets the original order back, as it is now; refusals stay off
PostgreSQL."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.orders.models import Order, OrderStatus
from apps.orders.services import order_transition
from conftest import admitted

pytestmark = pytest.mark.django_db


def purchase(client, sale, authorization, key):
    return client.post(
        f"/api/v1/flash_sales/{sale.id}/purchase",
        data=json.dumps({"quantity": 1}),
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY=key,
        HTTP_AUTHORIZATION=authorization,
    )


def test_a_replay_of_a_success_is_not_answered_sold_out(client, make_sale, make_shopper, settings):
    settings.SOLD_OUT_MEMORY_SECONDS = 60  # the memory on, as in production
    sale = make_sale(inventory=1)
    alice, bob, carol = make_shopper(), make_shopper(), make_shopper()
    alices = admitted(alice, sale)["HTTP_AUTHORIZATION"]
    first = purchase(client, sale, alices, "K")
    assert first.status_code == 201, first.content
    assert purchase(client, sale, admitted(bob, sale)["HTTP_AUTHORIZATION"], "B").status_code == 410

    # Bob's and Carol's refusals now come from the memory: no PostgreSQL at all.
    with CaptureQueriesContext(connection) as queries:
        again = purchase(client, sale, admitted(bob, sale)["HTTP_AUTHORIZATION"], "B")
        other = purchase(client, sale, admitted(carol, sale)["HTTP_AUTHORIZATION"], "C")
    assert again.status_code == 410 and other.status_code == 410
    assert again.json()["error"] == "sold_out"
    assert len(queries) == 0, [q["sql"] for q in queries]

    # Alice's retry (same key, same body, her same admission) is her order, not "sold out".
    for _ in range(3):
        replay = purchase(client, sale, alices, "K")
        assert replay.status_code == 200, replay.content
        assert replay.json() == first.json()
    assert Order.objects.count() == 1


def test_a_replay_after_a_decline_shows_the_order_as_it_is_now(client, make_sale, shopper):
    sale = make_sale(inventory=3)
    authorization = admitted(shopper, sale)["HTTP_AUTHORIZATION"]
    first = purchase(client, sale, authorization, "K")
    assert first.status_code == 201, first.content
    order_id = first.json()["order_id"]
    # The card is declined: the payment flow cancels the reservation.
    order_transition(
        order_id=order_id,
        from_status=OrderStatus.RESERVED,
        to_status=OrderStatus.CANCELLED,
        reason="card declined",
    )

    replay = purchase(client, sale, authorization, "K")
    assert replay.status_code == 200, replay.content
    body = replay.json()
    assert body["order_id"] == order_id
    assert body["status"] == "cancelled"
    assert body["payment_url"] is None  # nothing left to pay
    assert body["order_url"].endswith(f"/orders/{order_id}/")
    assert Order.objects.get(id=order_id).status == OrderStatus.CANCELLED


def test_a_sold_out_refusal_asks_nobody_and_a_holders_replay_still_gets_its_order(
    client, make_sale, make_shopper, settings, redis_round_trips
):
    """With the rate limits on (production), a shopper who took no hold in a sale this
    process knows sold out is refused by the process alone: no Redis round trip (not even
    the rate limits'), no PostgreSQL. The holder's replay still gets the order."""
    settings.SOLD_OUT_MEMORY_SECONDS = 60
    settings.BLOCKLIST_MEMORY_SECONDS = 60
    settings.RATELIMIT_ENABLE = True
    sale = make_sale(inventory=1)
    alice, bob = make_shopper(), make_shopper()
    alices = admitted(alice, sale)["HTTP_AUTHORIZATION"]
    first = purchase(client, sale, alices, "K")
    assert first.status_code == 201, first.content
    bobs = admitted(bob, sale)["HTTP_AUTHORIZATION"]
    for key in ("B1", "B2"):  # the sale is now known sold out, the block list copy warm
        assert purchase(client, sale, bobs, key).status_code == 410

    redis_round_trips.clear()
    with CaptureQueriesContext(connection) as queries:
        refused = purchase(client, sale, bobs, "B3")
    assert refused.status_code == 410 and refused.json()["error"] == "sold_out"
    assert redis_round_trips == [] and len(queries) == 0
    replay = purchase(client, sale, alices, "K")
    assert replay.status_code == 200 and replay.json() == first.json()
