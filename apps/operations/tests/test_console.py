"""The operator console: staff only, figures as JSON and over the WebSocket, controls that are
audited and take effect (a paused room admits nobody), and the sale-events feed."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client

from apps.operations.models import OperatorAction, SaleEvent
from apps.operations.services import sale_events_notice
from apps.sales.models import FlashSale
from apps.sales.selectors import sale_snapshot
from apps.waiting_room.services import room_settings, waiting_room_join, waiting_room_tick
from flashsale.asgi import application

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(
        username="operator", password="pw-for-tests", is_staff=True
    )


def _control(client, sale, name, body=None):
    return client.post(
        f"/ops/sales/{sale.id}/controls/{name}",
        data=json.dumps(body or {}),
        content_type="application/json",
    )


def test_console_is_for_staff_only(client, make_sale, shopper, staff):
    sale = make_sale()
    assert client.get(f"/ops/sales/{sale.id}/").status_code == 302  # to the admin login
    client.force_login(shopper)
    assert client.get(f"/ops/sales/{sale.id}/").status_code == 302
    assert _control(client, sale, "pause").status_code == 302
    client.force_login(staff)
    page = client.get(f"/ops/sales/{sale.id}/")
    assert page.status_code == 200
    assert b"now serving" in page.content and b"Pause admission" in page.content


def test_pause_stops_admission_and_is_audited(client, make_sale, make_shopper, staff):
    sale = make_sale(inventory=5)
    client.force_login(staff)
    response = _control(client, sale, "pause")
    assert response.status_code == 200 and response.json()["admission_paused"] is True
    assert _control(client, sale, "pause").status_code == 200  # twice: audited once
    action = OperatorAction.objects.get(sale=sale)
    assert (action.actor, action.action) == (staff, "pause_admission")
    assert SaleEvent.objects.filter(sale=sale, kind="admission.paused").count() == 1

    snapshot = sale_snapshot(str(sale.id))
    for _ in range(3):
        waiting_room_join(sale=snapshot, user_id=make_shopper().id)
    sale.refresh_from_db()
    tick = waiting_room_tick(room=room_settings(sale), units_reserved=0)
    assert tick.admitted == 0

    assert _control(client, sale, "resume").status_code == 200
    sale.refresh_from_db()
    assert sale.admission_paused is False
    assert OperatorAction.objects.filter(sale=sale, action="resume_admission").exists()


def test_rate_change_is_validated_and_audited(client, make_sale, staff):
    sale = make_sale()
    client.force_login(staff)
    bad = _control(client, sale, "rate", {"rate": "fast"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_admission_rate"
    ok = _control(client, sale, "rate", {"rate": 250})
    assert ok.status_code == 200 and ok.json()["configured_rate"] == 250
    assert FlashSale.objects.get(id=sale.id).admission_rate == 250
    action = OperatorAction.objects.get(sale=sale, action="set_admission_rate")
    assert action.before == {"admission_rate": 1000} and action.after == {"admission_rate": 250}


def test_cancel_from_the_console(client, make_sale, staff):
    sale = make_sale()
    client.force_login(staff)
    assert _control(client, sale, "cancel").status_code == 200
    assert FlashSale.objects.get(id=sale.id).status == "CANCELLED"
    again = _control(client, sale, "cancel")
    assert again.status_code == 409 and again.json()["error"] == "sale_closed"
    assert SaleEvent.objects.filter(sale=sale, kind="sale.cancelled").count() == 1


def test_events_feed_resumes_after_the_last_event_id(client, make_sale, staff, settings):
    settings.OPS_FEED_TOKEN = "feed-token-for-tests"
    sale = make_sale(inventory=1)
    assert sale_events_notice() >= 1  # the sale is live: "started"
    assert sale_events_notice() == 0  # noticed once only
    assert client.get(f"/ops/sales/{sale.id}/events").status_code == 401

    def read(**headers):
        response = client.get(
            f"/ops/sales/{sale.id}/events",
            HTTP_AUTHORIZATION="Bearer feed-token-for-tests",
            **headers,
        )
        assert response["Content-Type"] == "text/event-stream"
        frames, text = [], ""
        for chunk in response.streaming_content:
            text += chunk.decode()
            if ": keep-alive" in text:
                break
        for block in text.split("\n\n"):
            lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            if "data" in lines:
                frames.append(json.loads(lines["data"]))
        return frames

    first = read()
    assert [f["kind"] for f in first] == ["sale.started"]
    client.force_login(staff)
    _control(client, sale, "pause")
    later = read(HTTP_LAST_EVENT_ID=str(first[-1]["id"]))
    assert [f["kind"] for f in later] == ["admission.paused"]


@pytest.mark.django_db(transaction=True)
def test_console_websocket_pushes_figures_to_staff_only(make_sale, staff):
    sale = make_sale(inventory=3)
    path = f"/ws/ops/sales/{sale.id}/"
    origin = [(b"origin", b"http://127.0.0.1:8000")]
    web = Client()
    web.force_login(staff)
    cookie = f"sessionid={web.cookies['sessionid'].value}".encode()

    async def talk():
        stranger = WebsocketCommunicator(application, path, headers=origin)
        connected, code = await stranger.connect()
        assert not connected and code == 4403
        console = WebsocketCommunicator(application, path, headers=[*origin, (b"cookie", cookie)])
        connected, _ = await console.connect()
        assert connected
        message = await console.receive_json_from(timeout=10)
        await console.disconnect()
        return message

    message = async_to_sync(talk)()
    assert message["type"] == "figures"
    assert message["figures"]["sale_id"] == str(sale.id)
    assert message["figures"]["units_left"] == 3


def test_the_admin_sale_list_links_each_sale_to_its_console(admin_client, make_sale):
    sale = make_sale()
    page = admin_client.get("/admin/sales/flashsale/")
    assert page.status_code == 200
    assert f'href="/ops/sales/{sale.id}/"'.encode() in page.content
