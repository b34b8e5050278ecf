import json
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest

from apps.orders.models import Order
from conftest import admitted

pytestmark = pytest.mark.django_db


def purchase(client, sale, user, key="k1", body=None, **headers):
    return client.post(
        f"/api/v1/flash_sales/{sale.id}/purchase",
        data=json.dumps({"quantity": 1} if body is None else body),
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY=key,
        **admitted(user, sale),
        **headers,
    )


def test_purchase_reserves_a_unit(client, make_sale, shopper):
    sale = make_sale(inventory=5)
    response = purchase(client, sale, shopper)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "reserved"
    assert body["remaining_inventory"] == 4
    assert body["payment_url"].endswith(f"/orders/{body['order_id']}/pay/")
    order = Order.objects.get(id=body["order_id"])
    assert order.status == "RESERVED"
    assert order.units.count() == 1
    assert (order.reserved_until - order.reserved_at) == timedelta(seconds=300)


def test_replay_with_the_same_key_returns_the_same_order(client, make_sale, shopper):
    sale = make_sale(inventory=5)
    first = purchase(client, sale, shopper, key="same")
    again = purchase(client, sale, shopper, key="same")
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert Order.objects.filter(user=shopper).count() == 1


def test_same_key_with_another_body_is_refused(client, make_sale, shopper):
    sale = make_sale(inventory=5, max_per_user=3)
    assert purchase(client, sale, shopper, key="same").status_code == 201
    response = purchase(client, sale, shopper, key="same", body={"quantity": 2})
    assert response.status_code == 422
    assert response.json()["error"] == "idempotency_key_reused"


def test_replay_after_redis_lost_its_records_comes_from_postgres(
    client, make_sale, shopper, redis_client
):
    from conftest import _delete_prefixed_keys

    sale = make_sale(inventory=5)
    first = purchase(client, sale, shopper, key="k")
    _delete_prefixed_keys()
    again = purchase(client, sale, shopper, key="k")
    assert again.status_code == 200, again.content
    assert again.json()["order_id"] == first.json()["order_id"]
    assert Order.objects.filter(user=shopper).count() == 1


def test_second_purchase_over_the_limit_is_409(client, make_sale, shopper):
    sale = make_sale(inventory=5)
    assert purchase(client, sale, shopper, key="a").status_code == 201
    response = purchase(client, sale, shopper, key="b")
    assert response.status_code == 409
    assert response.json()["error"] == "already_reserved"


def test_sold_out_is_410(client, make_sale, make_shopper):
    sale = make_sale(inventory=1)
    assert purchase(client, sale, make_shopper()).status_code == 201
    response = purchase(client, sale, make_shopper())
    assert response.status_code == 410
    assert response.json()["error"] == "sold_out"


def test_not_started_is_425_with_the_start_time(client, make_sale, shopper):
    sale = make_sale(starts_in=timedelta(minutes=5))
    response = purchase(client, sale, shopper)
    assert response.status_code == 425
    body = response.json()
    assert body["error"] == "not_started"
    assert body["starts_in_seconds"] > 200
    assert not Order.objects.exists()


def test_ended_sale_is_410(client, make_sale, shopper):
    sale = make_sale(starts_in=timedelta(hours=-2), duration=timedelta(hours=1))
    response = purchase(client, sale, shopper)
    assert response.status_code == 410
    assert response.json()["error"] == "sale_ended"


def test_cancelled_sale_is_410(client, make_sale, shopper):
    from apps.sales.services import sale_cancel, sale_publish

    sale = make_sale()
    sale_cancel(sale_id=sale.id)
    sale_publish(sale_id=sale.id)
    response = purchase(client, sale, shopper)
    assert response.status_code == 410
    assert response.json()["error"] == "sale_cancelled"


@pytest.mark.parametrize(
    "body, code",
    [
        ({"quantity": 0}, "invalid_quantity"),
        ({"quantity": -1}, "invalid_quantity"),
        ({"quantity": 10**12}, "invalid_quantity"),
        ({"quantity": "1"}, "invalid_quantity"),
        ({"quantity": True}, "invalid_quantity"),
        ({"quantity": 1.5}, "invalid_quantity"),
        ({"quantity": 1, "product_id": "nope"}, "invalid_product_id"),
        ({"quantity": 1, "extra": 1}, "unknown_field"),
        ({"quantity": 1, "product_id": None}, "invalid_product_id"),
        ([1, 2], "malformed_json"),
    ],
)
def test_bad_input_is_400_json(client, make_sale, shopper, body, code):
    sale = make_sale()
    response = purchase(client, sale, shopper, body=body)
    assert response.status_code == 400
    assert response.json()["error"] == code
    assert not Order.objects.exists()


def test_malformed_json_is_400(client, make_sale, shopper):
    sale = make_sale()
    response = client.post(
        f"/api/v1/flash_sales/{sale.id}/purchase",
        data="{nope",
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY="k",
        **admitted(shopper, sale),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"


def test_wrong_product_is_400(client, make_sale, shopper):
    sale = make_sale()
    response = purchase(
        client, sale, shopper, body={"quantity": 1, "product_id": str(uuid.uuid4())}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "product_mismatch"


def test_quantity_over_max_per_user_is_409(client, make_sale, shopper):
    sale = make_sale(max_per_user=2)
    response = purchase(client, sale, shopper, body={"quantity": 3})
    assert response.status_code == 409


def test_missing_idempotency_key_is_400(client, make_sale, shopper):
    sale = make_sale()
    response = client.post(
        f"/api/v1/flash_sales/{sale.id}/purchase",
        data="{}",
        content_type="application/json",
        **admitted(shopper, sale),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "missing_idempotency_key"


@pytest.mark.parametrize(
    "sale_id", [str(uuid.uuid4()), "not-a-uuid"], ids=["unknown", "not-a-uuid"]
)
def test_unknown_sale_is_404(client, shopper, sale_id):
    response = client.post(
        f"/api/v1/flash_sales/{sale_id}/purchase",
        data="{}",
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY="k",
        **admitted(shopper, SimpleNamespace(id=sale_id)),
    )
    assert response.status_code == 404
    assert response.json()["error"] == "sale_not_found"


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nonsense", "Basic abc"])
def test_missing_or_invalid_credentials_are_401(client, make_sale, header):
    sale = make_sale()
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.post(
        f"/api/v1/flash_sales/{sale.id}/purchase",
        data="{}",
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY="k",
        **extra,
    )
    assert response.status_code == 401
    assert response.json()["error"] in {"not_authenticated", "invalid_token"}


def test_get_is_405_json(client, make_sale):
    sale = make_sale()
    response = client.get(f"/api/v1/flash_sales/{sale.id}/purchase")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def test_token_endpoint(client, make_shopper):
    make_shopper(username="zoe", password="pw-zoe-123")
    ok = client.post(
        "/api/v1/auth/token",
        {"username": "zoe", "password": "pw-zoe-123"},
        content_type="application/json",
    )
    assert ok.status_code == 200 and ok.json()["token_type"] == "Bearer"
    bad = client.post(
        "/api/v1/auth/token",
        {"username": "zoe", "password": "wrong"},
        content_type="application/json",
    )
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_credentials"
    empty = client.post("/api/v1/auth/token", {}, content_type="application/json")
    assert empty.status_code == 400


def test_sale_list_and_detail(client, make_sale):
    sale = make_sale(inventory=7)
    listing = client.get("/api/v1/flash_sales/")
    assert listing.status_code == 200
    assert str(sale.id) in {s["id"] for s in listing.json()}
    detail = client.get(f"/api/v1/flash_sales/{sale.id}").json()
    assert detail["remaining_inventory"] == 7
    assert detail["phase"] == "live"
    assert "server_time" in detail
    assert client.get(f"/api/v1/flash_sales/{uuid.uuid4()}").status_code == 404


@pytest.mark.parametrize("key", ["é", "k\u00a0", "\u00a0", "\x85", "clé-1", "k" * 256, "a\x7fb"])
def test_a_non_ascii_or_overlong_idempotency_key_is_invalid_not_missing(
    client, make_sale, shopper, key
):
    sale = make_sale()
    response = client.post(
        f"/api/v1/flash_sales/{sale.id}/purchase",
        data="{}",
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY=key,
        **admitted(shopper, sale),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_idempotency_key"
    assert not Order.objects.exists()
