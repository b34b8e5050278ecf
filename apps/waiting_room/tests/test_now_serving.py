"""The public now_serving figure: every waiting page whose socket failed polls it, so a
process answers it from memory for PUBLIC_PAGE_SECONDS (one Redis read per sale per period,
like the page), and nginx and a CDN may keep it a second (Cache-Control: public, max-age=1)."""

import json
import time

import pytest

from apps.core.memory import memories_reset
from apps.core.redis import get_redis
from apps.waiting_room.keys import room_keys
from conftest import bearer

from .helpers import PRE_QUEUE

pytestmark = pytest.mark.django_db


def _now_serving(client, sale):
    response = client.get(f"/api/v1/flash_sales/{sale.id}/waiting_room/now_serving")
    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=1"
    assert not response.cookies and "Cookie" not in response.get("Vary", "")
    return response.json()


def test_a_process_reads_now_serving_once_per_period(client, make_sale, make_shopper, settings):
    settings.PUBLIC_PAGE_SECONDS = 1.0
    memories_reset()
    sale = make_sale(inventory=7, **PRE_QUEUE)
    for shopper in (make_shopper(), make_shopper()):
        client.post(
            f"/api/v1/flash_sales/{sale.id}/waiting_room",
            data=json.dumps({}),
            content_type="application/json",
            **bearer(shopper),
        )
    try:
        assert _now_serving(client, sale)["now_serving"] == 0
        # The releaser lets two shoppers in (as its script records it).
        get_redis().hset(room_keys(sale.id).state, "sm", 2)
        # Within the period the process hands out what it read (what nginx would too) ...
        assert _now_serving(client, sale)["now_serving"] == 0
        # ... and after it, reads Redis again.
        time.sleep(1.05)
        assert _now_serving(client, sale)["now_serving"] == 2
    finally:
        memories_reset()


def test_an_unknown_sale_is_a_404_every_time(client, settings):
    settings.PUBLIC_PAGE_SECONDS = 1.0
    memories_reset()
    path = "/api/v1/flash_sales/00000000-0000-0000-0000-000000000000/waiting_room/now_serving"
    for _ in range(2):
        response = client.get(path)
        assert response.status_code == 404 and response.json()["error"] == "sale_not_found"
    memories_reset()
