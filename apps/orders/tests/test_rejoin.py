"""After a purchase, what the waiting room and the shopper's order API say, by the order's
state: a reservation or a paid order at the limit cannot queue again (409 with the order);
an order that ended unpaid (declined, expired) frees the shopper to queue again at the back
and buy while units remain."""

import json
import time

import pytest

from apps.inventory.keys import sale_keys
from apps.inventory.models import SaleBuyer
from apps.orders.models import Order, OrderStatus
from apps.orders.services import order_transition
from apps.waiting_room.tests.helpers import PRE_QUEUE, room, tick
from conftest import bearer

pytestmark = pytest.mark.django_db


def join(client, sale, user):
    return client.post(
        f"/api/v1/flash_sales/{sale.id}/waiting_room",
        data="{}",
        content_type="application/json",
        **bearer(user),
    )


def position(client, sale, user):
    return client.get(f"/api/v1/flash_sales/{sale.id}/waiting_room/position", **bearer(user))


def my_order(client, sale, user):
    response = client.get(f"/api/v1/flash_sales/{sale.id}/order", **bearer(user))
    assert response.status_code == 200, response.content
    return response.json()


def admit_through(sale, rank: int) -> None:
    """Run the real releaser step until the queue has served ``rank`` (at a fast rate)."""
    sale_room = room(sale, admission_rate=1000)
    deadline = time.monotonic() + 10
    while tick(sale_room).now_serving < rank:
        assert time.monotonic() < deadline, "the releaser did not reach the rank"


def buy(client, sale, user, key):
    ready = position(client, sale, user).json()
    assert ready["status"] == "ready", ready
    response = client.post(
        f"/api/v1/flash_sales/{sale.id}/purchase",
        data=json.dumps({"quantity": 1}),
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY=key,
        HTTP_AUTHORIZATION=f"Bearer {ready['admission_token']}",
    )
    assert response.status_code == 201, response.content
    return response.json()["order_id"]


def test_a_declined_shopper_queues_again_at_the_back_and_buys(
    client, make_sale, make_shopper, redis_client, django_capture_on_commit_callbacks
):
    sale = make_sale(inventory=3, **PRE_QUEUE)
    alice, bob = make_shopper(), make_shopper()
    assert join(client, sale, alice).json()["rank"] == 1
    assert join(client, sale, bob).json()["rank"] == 2
    admit_through(sale, 1)
    first = buy(client, sale, alice, "a1")

    # The card is declined: the payment flow cancels the order, which frees its unit and
    # the shopper's tally, in PostgreSQL and in Redis (after the commit).
    with django_capture_on_commit_callbacks(execute=True):
        order_transition(
            order_id=first,
            from_status=OrderStatus.RESERVED,
            to_status=OrderStatus.CANCELLED,
            reason="card declined",
        )
    assert SaleBuyer.objects.get(sale_id=sale.id, user_id=alice.id).units_held == 0
    assert redis_client.hget(sale_keys(sale.id).buyers, alice.id) is None
    assert redis_client.scard(sale_keys(sale.id).free) == 3

    place = position(client, sale, alice)
    assert place.status_code == 200
    body = place.json()
    assert body["status"] == "expired" and "admission_used" not in body
    assert body["order_id"] == first and body["order_url"].endswith(f"/orders/{first}/")
    assert body["units_held"] == 0
    mine = my_order(client, sale, alice)
    assert mine["can_queue"] is True and mine["units_held"] == 0
    assert mine["order"]["status"] == "cancelled" and mine["order"]["payment_url"] is None

    # She queues again, behind Bob (at the back, as any new join), and buys.
    again = join(client, sale, alice)
    assert again.status_code == 200, again.content
    assert again.json()["status"] == "waiting" and again.json()["rank"] == 3
    admit_through(sale, 3)
    second = buy(client, sale, alice, "a2")
    assert second != first
    assert Order.objects.get(id=second).status == OrderStatus.RESERVED
    assert my_order(client, sale, alice)["order"]["order_id"] == second


def test_a_reserved_or_paid_shopper_at_the_limit_is_pointed_to_their_order(
    client, make_sale, shopper
):
    sale = make_sale(inventory=3, max_per_user=1, **PRE_QUEUE)
    join(client, sale, shopper)
    admit_through(sale, 1)
    order_id = buy(client, sale, shopper, "k")

    # Reserved: cannot queue again; pointed to the reservation and its pay link.
    refused = join(client, sale, shopper)
    assert refused.status_code == 409, refused.content
    body = refused.json()
    assert body["error"] == "purchase_limit_reached" and body["detail"]
    assert body["order_id"] == order_id and body["order_url"].endswith(f"/orders/{order_id}/")
    assert body["units_held"] == 1
    place = position(client, sale, shopper).json()
    assert place["admission_used"] is True and place["order_id"] == order_id
    mine = my_order(client, sale, shopper)
    assert mine["can_queue"] is False and mine["units_held"] == 1
    assert mine["order"]["status"] == "reserved"
    assert mine["order"]["payment_url"].endswith(f"/orders/{order_id}/pay/")
    assert mine["order"]["receipt_url"] is None

    # Paid: still at the limit; pointed to the receipt.
    order_transition(order_id=order_id, from_status=OrderStatus.RESERVED, to_status="PAID")
    refused = join(client, sale, shopper)
    assert refused.status_code == 409 and refused.json()["error"] == "purchase_limit_reached"
    mine = my_order(client, sale, shopper)
    assert mine["order"]["status"] == "paid" and mine["can_queue"] is False
    assert mine["order"]["payment_url"] is None
    assert mine["order"]["receipt_url"].endswith(f"/orders/{order_id}/")


def test_the_order_api_needs_a_shopper_and_a_sale(client, make_sale, shopper):
    sale = make_sale(inventory=1)
    assert client.get(f"/api/v1/flash_sales/{sale.id}/order").status_code == 401
    missing = client.get("/api/v1/flash_sales/no-such-sale/order", **bearer(shopper))
    assert missing.status_code == 404 and missing.json()["error"] == "sale_not_found"
    empty = my_order(client, sale, shopper)
    assert empty["order"] is None and empty["orders"] == [] and empty["can_queue"] is True
