"""POST /api/v1/orders/{id}/pay and GET /api/v1/orders/{id}; the checkout page."""

from __future__ import annotations

import re
from datetime import date

import pytest

from apps.orders.models import Order, OrderStatus
from apps.payments.models import Payment, PaymentStatus
from apps.payments.services import payment_charge_attempt
from conftest import bearer

from .test_services import DECLINED, OK, window_closed

_YEAR = date.today().year + 3
CARD = {"exp_month": 12, "exp_year": _YEAR, "cvc": "123", "name": "A Shopper"}
FORM = {"expiry": f"12 / {_YEAR % 100:02d}", "cvc": "123", "name": "A Shopper"}

pytestmark = pytest.mark.django_db(transaction=True)


def post_pay(client, order, user=None, key=None, **body):
    headers = bearer(user or order.user)
    if key:
        headers["HTTP_X_IDEMPOTENCY_KEY"] = key
    return client.post(
        f"/api/v1/orders/{order.id}/pay",
        {**CARD, "card_number": OK, **body},
        content_type="application/json",
        **headers,
    )


def test_pay_returns_202_pending_and_is_idempotent_per_key(
    client, pay_settings, make_sale, reserve
):
    order = reserve(make_sale())
    first = post_pay(client, order, key="k1")
    assert first.status_code == 202
    body = first.json()
    assert body["status"] == "pending" and body["payment_id"]
    again = post_pay(client, order, key="k1")
    assert again.status_code == 202 and again.json()["payment_id"] == body["payment_id"]
    other = post_pay(client, order, key="k2")  # a second charge while one is in flight
    assert other.status_code == 409 and other.json()["error"] == "payment_in_progress"
    assert Payment.objects.filter(order=order).count() == 1
    payment = Payment.objects.get()
    assert payment.idempotency_key.startswith(f"order-{order.id}-")


def test_same_key_other_card_is_refused(client, pay_settings, make_sale, reserve):
    order = reserve(make_sale())
    assert post_pay(client, order, key="k").status_code == 202
    response = post_pay(client, order, key="k", card_number=DECLINED)
    assert response.status_code == 422 and response.json()["error"] == "idempotency_key_reused"


@pytest.mark.parametrize(
    "body, code",
    [
        ({**CARD, "card_number": "12ab"}, "invalid_card_number"),
        ({**CARD, "card_number": "4242"}, "invalid_card_number"),
        ({"card_number": OK}, "bad_request"),
        ({}, "bad_request"),
    ],
)
def test_bad_card_input_is_400_json(client, pay_settings, make_sale, reserve, body, code):
    order = reserve(make_sale())
    response = client.post(
        f"/api/v1/orders/{order.id}/pay",
        body,
        content_type="application/json",
        **bearer(order.user),
    )
    assert response.status_code == 400
    assert response.json()["error"] == code and "detail" in response.json()
    assert not Payment.objects.exists()


def test_malformed_json_is_400(client, pay_settings, make_sale, reserve):
    order = reserve(make_sale())
    response = client.post(
        f"/api/v1/orders/{order.id}/pay", "{nope", content_type="application/json",
        **bearer(order.user),
    )  # fmt: skip
    assert response.status_code == 400 and response.json()["error"] == "malformed_json"


def test_only_the_owner_sees_or_pays_an_order(
    client, pay_settings, make_sale, reserve, make_shopper
):
    order = reserve(make_sale())
    stranger = make_shopper()
    assert post_pay(client, order, user=stranger).status_code == 404
    assert client.get(f"/api/v1/orders/{order.id}", **bearer(stranger)).status_code == 404
    assert client.get(f"/api/v1/orders/{order.id}").status_code == 401
    assert client.post(f"/api/v1/orders/{order.id}/pay", {}).status_code == 401
    assert not Payment.objects.exists()


def test_expired_reservation_cannot_be_paid(client, pay_settings, make_sale, reserve):
    order = reserve(make_sale())
    window_closed(order, seconds_ago=1)  # expired by the database's clock, job not run yet
    response = post_pay(client, order)
    assert response.status_code == 410 and response.json()["error"] == "reservation_expired"
    Order.objects.filter(id=order.id).update(status=OrderStatus.EXPIRED)
    assert post_pay(client, order, key="x").json()["error"] == "reservation_expired"


def test_paid_order_cannot_be_paid_again(client, pay_settings, make_sale, reserve):
    order = reserve(make_sale())
    post_pay(client, order, key="a")
    payment_charge_attempt(payment_id=Payment.objects.get().id)
    response = post_pay(client, order, key="b")
    assert response.status_code == 409 and response.json()["error"] == "order_already_paid"


def test_get_order_shows_status_expiry_and_payments(client, pay_settings, make_sale, reserve):
    order = reserve(make_sale())
    post_pay(client, order, key="a", card_number=DECLINED)
    payment_charge_attempt(payment_id=Payment.objects.get().id)
    body = client.get(f"/api/v1/orders/{order.id}", **bearer(order.user)).json()
    assert body["order_id"] == str(order.id)
    assert body["status"] == "cancelled" and "declined" in body["status_reason"]
    assert body["reservation_expires_at"].endswith("Z")
    assert body["payments"][0]["status"] == "failed"
    assert body["payments"][0]["failure_code"] == "card_declined"
    assert body["payments"][0]["card_last4"] == "0002"


# --- the checkout page ------------------------------------------------------------------
def test_checkout_page_form_then_live_outcome(client, pay_settings, make_sale, reserve):
    order = reserve(make_sale())
    client.force_login(order.user)
    page = client.get(f"/orders/{order.id}/pay/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="card_number"' in html and "data-reserved-until-ms" in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)  # no inline JS (strict CSP)
    nonce = re.search(r'name="nonce" value="([0-9a-f]+)"', html).group(1)
    response = client.post(f"/orders/{order.id}/pay/", {**FORM, "card_number": OK, "nonce": nonce})
    assert response.status_code == 302
    client.post(
        f"/orders/{order.id}/pay/", {**FORM, "card_number": OK, "nonce": nonce}
    )  # double click
    assert Payment.objects.filter(order=order).count() == 1
    pending = client.get(f"/orders/{order.id}/pay/").content.decode()
    assert 'data-outcome="pending"' in pending and "/ws/orders/" in pending
    status = client.get(f"/orders/{order.id}/pay/status").json()
    assert status["payments"][0]["status"] == "pending"
    payment_charge_attempt(payment_id=Payment.objects.get().id)
    paid = client.get(f"/orders/{order.id}/pay/").content.decode()
    assert 'data-outcome="paid"' in paid


def test_checkout_page_declined_and_expired_endings(client, pay_settings, make_sale, reserve):
    order = reserve(make_sale())
    client.force_login(order.user)
    client.post(f"/orders/{order.id}/pay/", {**FORM, "card_number": DECLINED, "nonce": "n1"})
    payment_charge_attempt(payment_id=Payment.objects.get().id)
    assert 'data-outcome="declined"' in client.get(f"/orders/{order.id}/pay/").content.decode()

    other = reserve(make_sale())
    client.force_login(other.user)
    window_closed(other, seconds_ago=1)
    from apps.orders.services import orders_expire_all_due

    orders_expire_all_due()
    assert 'data-outcome="expired"' in client.get(f"/orders/{other.id}/pay/").content.decode()
    refused = client.post(f"/orders/{other.id}/pay/", {**FORM, "card_number": OK, "nonce": "n2"})
    assert refused.status_code == 410


def test_checkout_page_is_only_for_the_owner(client, pay_settings, make_sale, reserve, shopper):
    order = reserve(make_sale())
    assert client.get(f"/orders/{order.id}/pay/").status_code == 302  # to the login page
    client.force_login(shopper)
    assert client.get(f"/orders/{order.id}/pay/").status_code == 404
    assert client.get(f"/orders/{order.id}/pay/status").status_code == 404
    assert client.post(f"/orders/{order.id}/pay/", {"card_number": OK}).status_code == 404
    assert not Payment.objects.exists()
    assert Payment.objects.filter(status=PaymentStatus.PENDING).count() == 0
