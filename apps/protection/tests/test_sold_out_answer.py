"""A purchase this process refuses as sold out by itself (a shopper who took no hold in a sale
it knows sold out) is answered by the protection middleware, exactly as the view would answer
it; whatever only the view can say (a wrong token, a missing key) still comes from the view."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from apps.orders import apis
from apps.orders.services.sold_out import sale_known_sold_out
from conftest import admitted, bearer

pytestmark = pytest.mark.django_db

PURCHASE_ROUTE = "api/v1/flash_sales/<str:sale_id>/purchase"
HEADERS = (
    "Content-Type",
    "Content-Security-Policy",
    "Permissions-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Cross-Origin-Opener-Policy",
)


def purchase(client, sale, headers: dict, key: str | None = "k"):
    if key is not None:
        headers = {**headers, "HTTP_X_IDEMPOTENCY_KEY": key}
    return client.post(
        f"/api/v1/flash_sales/{sale.id}/purchase",
        data=json.dumps({"quantity": 1}),
        content_type="application/json",
        **headers,
    )


def _count(client, status: str) -> float:
    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("http_server_request_duration_seconds_count{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
            if (
                labels["http_route"] == PURCHASE_ROUTE
                and labels["http_response_status_code"] == status
            ):
                total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def sold_out_sale(client, make_sale, make_shopper, settings):
    """A sale this process knows sold out (its one unit taken by a first shopper)."""
    settings.SOLD_OUT_MEMORY_SECONDS = 60
    sale = make_sale(inventory=1)
    assert purchase(client, sale, admitted(make_shopper(), sale)).status_code == 201
    return sale


def test_the_middleware_answers_a_known_sold_out_refusal_as_the_view_does(
    client, sold_out_sale, make_shopper, monkeypatch
):
    sale, bob = sold_out_sale, make_shopper()
    bobs = admitted(bob, sale)
    by_view = purchase(client, sale, bobs, "b1")  # reserve.lua says sold out: the view answers
    assert by_view.status_code == 410 and sale_known_sold_out(str(sale.id))

    reached = []
    refusal = apis.sold_out_refusal
    monkeypatch.setattr(
        apis, "sold_out_refusal", lambda **kwargs: reached.append(kwargs) or refusal(**kwargs)
    )
    counted = _count(client, "410")
    by_middleware = purchase(client, sale, bobs, "b2")
    assert by_middleware.status_code == 410
    assert not reached  # the view never ran
    assert (
        by_middleware.json()
        == by_view.json()
        == {
            "error": "sold_out",
            "detail": "Sold out: every unit is taken.",
        }
    )
    for name in HEADERS:
        assert by_middleware.get(name) == by_view.get(name), name
    assert by_middleware["X-Frame-Options"] == "DENY"
    assert by_middleware["X-Content-Type-Options"] == "nosniff"
    assert _count(client, "410") == counted + 1  # counted under the purchase's route


def test_what_only_the_view_can_say_still_comes_from_the_view(
    client, sold_out_sale, make_shopper, make_sale
):
    sale, bob, carol = sold_out_sale, make_shopper(), make_shopper()
    bobs = admitted(bob, sale)
    assert purchase(client, sale, bobs).status_code == 410  # now known sold out

    no_key = purchase(client, sale, bobs, key=None)
    assert no_key.status_code == 400 and no_key.json()["error"] == "missing_idempotency_key"
    bad_key = purchase(client, sale, bobs, key="ключ")
    assert bad_key.status_code == 400 and bad_key.json()["error"] == "invalid_idempotency_key"
    shopper_token = purchase(client, sale, bearer(bob), key=uuid.uuid4().hex)
    assert shopper_token.status_code == 403 and shopper_token.json()["error"] == "not_admitted"
    other_sale = admitted(bob, make_sale(inventory=1))
    elsewhere = purchase(client, sale, other_sale, key=uuid.uuid4().hex)
    assert elsewhere.status_code == 403 and "another sale" in elsewhere.json()["detail"]
    someone_else = {**bobs, "HTTP_X_SHOPPER_TOKEN": bearer(carol)["HTTP_AUTHORIZATION"][7:]}
    mismatch = purchase(client, sale, someone_else, key=uuid.uuid4().hex)
    assert mismatch.status_code == 403 and "another shopper" in mismatch.json()["detail"]
    trailing = client.post(
        f"/api/v1/flash_sales/{sale.id}/purchase/",
        data="{}",
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY="k",
        **bobs,
    )
    assert trailing.status_code == 404  # no such route, whatever the sale's state
