"""Shoppers see only their own orders: another shopper's order is 404, never 403 (which
would confirm it exists), through the API and the pages."""

from __future__ import annotations

import uuid

import pytest

from conftest import bearer

from .conftest import purchase_auth

pytestmark = pytest.mark.django_db


def _order_of(client, sale, user) -> str:
    response = client.post(
        f"/api/v1/flash_sales/{sale.id}/purchase",
        {},
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY=uuid.uuid4().hex,
        **purchase_auth(user, sale),
    )
    assert response.status_code == 201, response.content
    return response.json()["order_id"]


def test_idor_on_another_shoppers_order_is_404(client, make_sale, make_shopper):
    sale = make_sale(inventory=5)
    owner, intruder = make_shopper(), make_shopper()
    order_id = _order_of(client, sale, owner)

    assert client.get(f"/api/v1/orders/{order_id}", **bearer(owner)).status_code == 200
    stolen = client.get(f"/api/v1/orders/{order_id}", **bearer(intruder))
    assert stolen.status_code == 404 and stolen.json()["error"] == "order_not_found"
    assert client.get(f"/api/v1/orders/{uuid.uuid4()}", **bearer(owner)).status_code == 404
    assert client.get(f"/api/v1/orders/{order_id}").status_code == 401
    pay = client.post(
        f"/api/v1/orders/{order_id}/pay",
        {"card_number": "4242424242424242", "exp_month": "12", "exp_year": "2040", "cvc": "123"},
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY="intruder-pay",
        **bearer(intruder),
    )
    assert pay.status_code == 404, pay.content
    # A forged token naming the owner is refused outright.
    forged = bearer(owner)["HTTP_AUTHORIZATION"][:-4] + "AAAA"
    assert client.get(f"/api/v1/orders/{order_id}", HTTP_AUTHORIZATION=forged).status_code == 401


def test_idor_on_the_order_pages_is_404(client, make_sale, make_shopper):
    sale = make_sale(inventory=5)
    owner, intruder = make_shopper(), make_shopper()
    order_id = _order_of(client, sale, owner)
    client.force_login(intruder)
    assert client.get(f"/orders/{order_id}/").status_code == 404
    assert client.get(f"/orders/{order_id}/pay/").status_code == 404
    client.force_login(owner)
    assert client.get(f"/orders/{order_id}/").status_code == 200
