"""The waiting-room API as the pages use it: join, position, now_serving, then the purchase
with the admission it hands out."""

import json
import time
import uuid
from datetime import timedelta

import pytest

from apps.orders.models import Order
from conftest import bearer

from .helpers import PRE_QUEUE, room, tick

pytestmark = pytest.mark.django_db


def join(client, sale, user, body=None):
    return client.post(
        f"/api/v1/flash_sales/{sale.id}/waiting_room",
        data=json.dumps(body or {}),
        content_type="application/json",
        **bearer(user),
    )


def position(client, sale, user):
    return client.get(f"/api/v1/flash_sales/{sale.id}/waiting_room/position", **bearer(user))


def test_join_position_admission_and_purchase(client, make_sale, make_shopper):
    sale = make_sale(inventory=3, **PRE_QUEUE)
    first, second = make_shopper(), make_shopper()
    joined = join(client, sale, first)
    assert joined.status_code == 200, joined.content
    body = joined.json()
    assert set(body) >= {
        "position",
        "rank",
        "estimated_wait_seconds",
        "status",
        "websocket_url",
        "now_serving",
    }
    assert (body["status"], body["rank"], body["position"], body["now_serving"]) == (
        "waiting",
        1,
        1,
        0,
    )
    assert join(client, sale, second).json()["rank"] == 2
    assert join(client, sale, first).json()["rank"] == 1  # joining twice keeps the place
    assert position(client, sale, second).json()["position"] == 2

    # The shopper token alone does not buy.
    refused = client.post(
        f"/api/v1/flash_sales/{sale.id}/purchase",
        data="{}",
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY="k",
        **bearer(first),
    )
    assert refused.status_code == 403 and refused.json()["error"] == "not_admitted"

    # One place at a time: the active cap admits the first shopper alone, whatever the rate
    # credits in the 20 ms between the two ticks (by Redis's clock).
    sale_room = room(sale, admission_rate=100_000, max_active_shoppers=1)
    tick(sale_room)
    time.sleep(0.02)
    assert tick(sale_room).now_serving == 1
    ready = position(client, sale, first).json()
    assert ready["status"] == "ready" and ready["admission_token"]
    assert ready["admission_expires_at"].endswith("Z")
    assert position(client, sale, second).json() | {"estimated_wait_seconds": 0} == {
        "position": 1,
        "rank": 2,
        "estimated_wait_seconds": 0,
        "status": "waiting",
        "websocket_url": ready["websocket_url"],
        "now_serving": 1,
    }
    bought = client.post(
        f"/api/v1/flash_sales/{sale.id}/purchase",
        data="{}",
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY="k",
        HTTP_AUTHORIZATION=f"Bearer {ready['admission_token']}",
    )
    assert bought.status_code == 201, bought.content
    assert Order.objects.get().user_id == first.id
    after = position(client, sale, first).json()
    assert after["status"] == "expired" and after["admission_used"] is True


def test_room_closed_before_it_opens_is_425_with_the_opening_time(client, make_sale, shopper):
    sale = make_sale(starts_in=timedelta(minutes=20), **PRE_QUEUE)
    response = join(client, sale, shopper)
    assert response.status_code == 425
    body = response.json()
    assert body["error"] == "waiting_room_closed" and body["detail"]
    opens = sale.start_time - timedelta(minutes=15)
    assert body["opens_at"].startswith(opens.strftime("%Y-%m-%dT%H:%M"))


def test_position_without_joining_is_404(client, make_sale, shopper):
    sale = make_sale(**PRE_QUEUE)
    response = position(client, sale, shopper)
    assert response.status_code == 404 and response.json()["error"] == "not_in_queue"


def test_now_serving_is_public_and_cacheable(client, make_sale, shopper):
    sale = make_sale(inventory=7, **PRE_QUEUE)
    join(client, sale, shopper)
    response = client.get(f"/api/v1/flash_sales/{sale.id}/waiting_room/now_serving")
    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=1"
    assert response.json() == {
        "now_serving": 0,
        "admission_rate": 1000,
        "status": "live",
        "units_left": 7,
    }


@pytest.mark.parametrize(
    "method, path, kwargs, status",
    [
        ("post", "waiting_room", {}, 401),
        ("post", "waiting_room", {"HTTP_AUTHORIZATION": "Bearer junk"}, 401),
        ("get", "waiting_room", {}, 405),
        ("get", "waiting_room/position", {}, 401),
        ("post", "waiting_room/now_serving", {}, 405),
    ],
)
def test_bad_requests_are_json_4xx(client, make_sale, method, path, kwargs, status):
    sale = make_sale(**PRE_QUEUE)
    response = getattr(client, method)(f"/api/v1/flash_sales/{sale.id}/{path}", **kwargs)
    assert response.status_code == status
    assert set(response.json()) >= {"error", "detail"}


def test_unknown_sale_and_malformed_body(client, shopper, make_sale):
    for sale_id in (uuid.uuid4(), "nope"):
        response = client.post(
            f"/api/v1/flash_sales/{sale_id}/waiting_room",
            data="{}",
            content_type="application/json",
            **bearer(shopper),
        )
        assert response.status_code == 404 and response.json()["error"] == "sale_not_found"
        public = client.get(f"/api/v1/flash_sales/{sale_id}/waiting_room/now_serving")
        assert public.status_code == 404
    sale = make_sale(**PRE_QUEUE)
    response = client.post(
        f"/api/v1/flash_sales/{sale.id}/waiting_room",
        data="[1",
        content_type="application/json",
        **bearer(shopper),
    )
    assert response.status_code == 400 and response.json()["error"] == "malformed_json"
