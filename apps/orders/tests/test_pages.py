"""The shopper's own pages: My orders, and the small private JSON that tells the shared (and
cached) sale page and the queue page what this shopper has in the sale."""

from datetime import timedelta

import pytest

from apps.orders.models import Order
from apps.orders.services import order_reserve
from apps.orders.services.transitions import order_transition
from apps.sales.selectors import sale_snapshot

pytestmark = pytest.mark.django_db


def _reserve(sale, user, key="k"):
    body = order_reserve(
        sale=sale_snapshot(str(sale.id)), user_id=user.id, quantity=1, idempotency_key=key
    )
    return Order.objects.get(id=body.body["order_id"])


def _paid(sale, user):
    order = _reserve(sale, user, key="paid")
    order_transition(order_id=order.id, from_status="RESERVED", to_status="PAID")
    return order


def test_my_orders_shows_status_timer_pay_link_and_receipt(client, make_sale, shopper):
    reserved = _reserve(make_sale(title="Reserved drop"), shopper)
    paid = _paid(make_sale(title="Paid drop"), shopper)
    cancelled = _reserve(make_sale(title="Declined drop"), shopper, key="c")
    order_transition(order_id=cancelled.id, from_status="RESERVED", to_status="CANCELLED")

    assert client.get("/orders/").status_code == 302  # sign in first
    client.force_login(shopper)
    page = client.get("/orders/")
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    html = page.content.decode()
    assert f'href="/orders/{reserved.id}/pay/"' in html and "data-row-left" in html
    assert f'href="/orders/{paid.id}/"' in html and "Receipt" in html
    assert "Declined drop" in html and "Cancelled" in html

    receipt = client.get(f"/orders/{paid.id}/").content.decode()
    assert "This page is your receipt" in receipt and "Paid on" in receipt


def test_my_orders_shows_only_the_shoppers_own(client, make_sale, make_shopper):
    theirs = _reserve(make_sale(title="Someone else's drop"), make_shopper())
    client.force_login(make_shopper())
    html = client.get("/orders/").content.decode()
    assert str(theirs.id) not in html and "No orders yet" in html


@pytest.mark.parametrize(
    ("story", "status", "at_limit", "pay"),
    [
        ("reserved", "RESERVED", True, True),
        ("paid", "PAID", True, False),
        ("cancelled", "CANCELLED", False, False),
        ("expired", "EXPIRED", False, False),
    ],
)
def test_sale_shopper_state(client, make_sale, shopper, story, status, at_limit, pay):
    sale = make_sale()
    if story == "paid":
        order = _paid(sale, shopper)
    else:
        order = _reserve(sale, shopper)
        if story != "reserved":
            order_transition(order_id=order.id, from_status="RESERVED", to_status=status)
    client.force_login(shopper)
    response = client.get(f"/sales/{sale.id}/me")
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    body = response.json()
    assert body["order"]["id"] == str(order.id) and body["order"]["status"] == status
    assert body["order"]["url"] == f"/orders/{order.id}/"
    assert body["at_limit"] is at_limit
    assert (body["order"]["pay_url"] == f"/orders/{order.id}/pay/") is pay
    assert body["in_queue"] is False


def test_sale_shopper_state_for_a_stranger_and_the_shared_page(client, make_sale, shopper):
    sale = make_sale()
    _paid(sale, shopper)
    assert client.get(f"/sales/{sale.id}/me").json() == {
        "signed_in": False,
        "order": None,
        "at_limit": False,
    }
    # The shared sale page stays the same for everyone: the shopper's state is not in it.
    client.force_login(shopper)
    page = client.get(f"/sales/{sale.id}/")
    assert "public" in page["Cache-Control"] and "Cookie" not in page.get("Vary", "")
    assert "You bought this" not in page.content.decode()


def test_cards_and_sale_page_show_sold_out_and_ended(client, make_sale, shopper):
    sold_out = make_sale(title="Gone drop", inventory=1)
    _reserve(sold_out, shopper)
    make_sale(title="Live drop", inventory=3)
    ended = make_sale(title="Over drop", starts_in=-timedelta(hours=2), duration=timedelta(hours=1))

    html = client.get("/").content.decode()
    gone = html[html.index("Gone drop") :]
    gone = gone[: gone.index("</li>")]
    assert "Sold out" in gone and "Live now" not in gone
    live = html[html.index("Live drop") :]
    assert "Live now" in live[: live.index("</li>")]

    page = client.get(f"/sales/{sold_out.id}/").content.decode()
    assert 'data-phase="sold_out"' in page and "Sold out." in page
    assert "data-join hidden" in page
    page = client.get(f"/sales/{ended.id}/").content.decode()
    assert "This sale has ended." in page and "data-join hidden" in page
