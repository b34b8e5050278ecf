"""The shopper's pages: what they show, who may see them, and what a CDN may keep."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.signals import template_rendered
from django.urls import reverse

from apps.core.memory import memories_reset
from apps.orders.models import Order
from apps.orders.services import order_reserve
from apps.sales.selectors import sale_snapshot

pytestmark = pytest.mark.django_db

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
INLINE_STYLE = re.compile(r"\sstyle\s*=", re.I)


def assert_csp_safe(html: str) -> None:
    """Nothing a Content-Security-Policy without 'unsafe-inline' would block."""
    assert not INLINE_SCRIPT.search(html), "inline <script>"
    assert not INLINE_HANDLER.search(html), "inline event handler"
    assert not INLINE_STYLE.search(html), "inline style attribute"


def test_home_lists_upcoming_and_live_sales_with_countdowns(client, make_sale):
    live = make_sale(title="Live sneakers", starts_in=timedelta(seconds=-30))
    soon = make_sale(title="Soon jacket", starts_in=timedelta(hours=2))
    over = make_sale(title="Old drop", starts_in=timedelta(hours=-3), duration=timedelta(hours=1))

    response = client.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Live sneakers" in html and "Soon jacket" in html and "Old drop" not in html
    assert html.index("Live sneakers") < html.index("Soon jacket")  # soonest first
    assert f'href="/sales/{live.id}/"' in html and f'href="/sales/{soon.id}/"' in html
    assert html.count("data-countdown ") == 2
    assert f'data-starts-ms="{int(soon.start_time.timestamp() * 1000)}"' in html
    assert over.id  # created, just not listed
    assert_csp_safe(html)


def test_sale_page_is_public_cacheable_and_the_same_for_everyone(client, make_sale, shopper):
    sale = make_sale(title="Drop", starts_in=timedelta(seconds=90), price="49.00")

    anonymous = client.get(f"/sales/{sale.id}/")
    client.force_login(shopper)
    signed_in = client.get(f"/sales/{sale.id}/")

    for response in (anonymous, signed_in):
        assert response.status_code == 200
        cache = response["Cache-Control"]
        assert "public" in cache and "max-age=2" in cache  # the start is near: 2 s at most
        assert "Cookie" not in response.get("Vary", "")
        # No session or CSRF cookie is set or read. (The protection middleware's fs_seen /
        # fs_device cookies are its own; see the report on cacheability.)
        assert not {"sessionid", "csrftoken"} & set(response.cookies)
        html = response.content.decode()
        assert "49.00 USD" in html and "Join the waiting room" in html
        assert f'href="/sales/{sale.id}/queue/"' in html
        assert_csp_safe(html)
        # The Content-Security-Policy the protection middleware sends forbids inline scripts.
        policy = response["Content-Security-Policy"]
        assert "script-src 'self';" in policy and "unsafe-inline" not in policy.split(";")[1]
    # Nothing per shopper in the cached page: the header is filled in by /me.
    assert shopper.username not in signed_in.content.decode()
    assert anonymous.content == signed_in.content


@pytest.mark.django_db(transaction=True)
def test_the_herd_gets_one_render_per_page_per_second_per_process(make_sale, settings):
    """Threads asking at once for a page nobody rendered yet share one render, and it is
    handed out (same bytes, same headers, no cookie) until the period is over."""
    settings.PUBLIC_PAGE_SECONDS = 1.0
    memories_reset()
    sale = make_sale(starts_in=timedelta(seconds=90))
    path = f"/sales/{sale.id}/"
    renders, lock, barrier = Counter(), threading.Lock(), threading.Barrier(50)
    answers = []

    def rendered(sender, template, **kwargs):
        with lock:
            renders[template.name] += 1

    def load():
        barrier.wait()
        response = Client().get(path)
        with lock:
            answers.append(response)
        connection.close()

    template_rendered.connect(rendered)
    try:
        threads = [threading.Thread(target=load) for _ in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert renders["sales/detail.html"] == 1
        assert {r.status_code for r in answers} == {200}
        assert len({r.content for r in answers}) == 1
        for response in answers:
            cache = response["Cache-Control"]
            assert "public" in cache and "max-age=2" in cache
            assert not response.cookies and "Cookie" not in response.get("Vary", "")
        # Once the period is over the page is rendered again (the badge follows the sale).
        time.sleep(1.05)
        Client().get(path)
        assert renders["sales/detail.html"] == 2
    finally:
        template_rendered.disconnect(rendered)
        memories_reset()


def test_the_shared_pages_take_the_lean_chain_with_their_security_headers(make_sale):
    """The servers' WSGI application sends the list and sale pages through the API's lean
    chain (no session, CSRF, auth or messages middleware): they read none of it."""
    from apps.core.handlers import PathDispatch
    from apps.core.tests.test_api_chain import call

    application = PathDispatch()
    sale = make_sale(title="Lean drop", starts_in=timedelta(seconds=90))
    for path in (f"/sales/{sale.id}/", "/"):
        status, headers, content = call(application, "GET", path)
        assert status == 200 and b"Lean drop" in content
        assert "set-cookie" not in headers and "vary" not in headers
        assert "public" in headers["cache-control"][0]
        assert headers["x-frame-options"] == ["DENY"]
        assert "script-src 'self';" in headers["content-security-policy"][0]
        assert_csp_safe(content.decode())
    # Any other page keeps the full chain (the queue page needs the session).
    assert application.shared_pages.fullmatch(f"/sales/{sale.id}/queue/") is None
    assert application.shared_pages.fullmatch("/orders/") is None


def test_an_unknown_sale_is_never_remembered_as_a_page(client, settings):
    settings.PUBLIC_PAGE_SECONDS = 1.0
    memories_reset()
    path = f"/sales/{uuid.uuid4()}/"
    assert client.get(path).status_code == 404
    assert client.get(path).status_code == 404
    memories_reset()


def test_far_away_sale_may_be_cached_a_little_longer(client, make_sale):
    sale = make_sale(starts_in=timedelta(days=2))
    assert "max-age=10" in client.get(f"/sales/{sale.id}/")["Cache-Control"]


def test_unknown_sale_is_a_friendly_404(client):
    response = client.get(f"/sales/{uuid.uuid4()}/")
    assert response.status_code == 404
    assert "could not find" in response.content.decode()
    assert client.get("/sales/not-a-uuid/").status_code == 404


def test_me_says_who_is_signed_in_and_is_never_cached(client, shopper):
    assert client.get("/me").json() == {"username": None}
    client.force_login(shopper)
    response = client.get("/me")
    assert response.json()["username"] == shopper.username
    assert response.json()["csrf_token"]
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_server_time_is_the_servers_clock(client):
    import time

    before = time.time() * 1000
    body = client.get("/time").json()
    assert before - 1000 <= body["now_ms"] <= time.time() * 1000 + 1000


def test_queue_page_needs_a_login_and_carries_a_shopper_token(client, make_sale, shopper, settings):
    settings.WS_PUBLIC_URL = "wss://shop.example/live"
    sale = make_sale(starts_in=timedelta(minutes=5))
    url = f"/sales/{sale.id}/queue/"

    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))

    client.force_login(shopper)
    response = client.get(url)
    assert response.status_code == 200
    assert "private" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    html = response.content.decode()
    token = re.search(r'data-token="([^"]+)"', html).group(1)
    from apps.core.authentication import shopper_from_authorization

    assert shopper_from_authorization(f"Bearer {token}").id == shopper.id
    assert f'data-ws-url="wss://shop.example/live/ws/sales/{sale.id}/"' in html
    assert f'data-api="/api/v1/flash_sales/{sale.id}"' in html
    for state in ("waiting", "admitted", "sold_out", "expired", "error", "ended"):
        assert f'data-show="{state}"' in html
    assert_csp_safe(html)


def test_reservation_page_shows_countdown_and_pay_link_to_its_owner_only(
    client, make_sale, make_shopper
):
    sale = make_sale(reservation_seconds=300, price="12.50")
    owner, stranger = make_shopper(), make_shopper()
    reservation = order_reserve(
        sale=sale_snapshot(str(sale.id)), user_id=owner.id, quantity=1, idempotency_key="k1"
    )
    order = Order.objects.get(id=reservation.body["order_id"])
    url = f"/orders/{order.id}/"

    client.force_login(stranger)
    assert client.get(url).status_code == 404

    client.force_login(owner)
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Your unit is reserved" in html
    assert f'href="/orders/{order.id}/pay/"' in html
    assert f'data-reserved-until-ms="{int(order.reserved_until.timestamp())}000"' in html
    assert "12.50 USD" in html
    assert_csp_safe(html)


def test_reservation_page_explains_an_expired_order(client, make_sale, shopper):
    from apps.orders.services.transitions import order_transition

    sale = make_sale()
    reservation = order_reserve(
        sale=sale_snapshot(str(sale.id)), user_id=shopper.id, quantity=1, idempotency_key="k2"
    )
    order_id = reservation.body["order_id"]
    order_transition(order_id=order_id, from_status="RESERVED", to_status="EXPIRED", reason="test")
    client.force_login(shopper)
    html = client.get(f"/orders/{order_id}/").content.decode()
    assert "This reservation expired" in html
    assert "/pay/" not in html


def test_login_page_signs_a_shopper_in(client, make_shopper):
    make_shopper(username="ada", password="correct horse")
    page = client.get("/accounts/login/?next=/")
    assert page.status_code == 200
    assert 'for="id_username"' in page.content.decode()
    assert_csp_safe(page.content.decode())
    wrong = client.post("/accounts/login/", {"username": "ada", "password": "nope", "next": "/"})
    assert "did not match" in wrong.content.decode()
    right = client.post(
        "/accounts/login/", {"username": "ada", "password": "correct horse", "next": "/"}
    )
    assert right.status_code == 302 and right["Location"] == "/"
    assert client.get("/me").json()["username"] == "ada"


def test_sold_out_sale_still_renders_and_the_api_says_sold_out(client, make_sale, shopper):
    sale = make_sale(inventory=1)
    order_reserve(
        sale=sale_snapshot(str(sale.id)), user_id=shopper.id, quantity=1, idempotency_key="k3"
    )
    assert client.get(f"/sales/{sale.id}/").status_code == 200
    body = client.get(f"/api/v1/flash_sales/{sale.id}").json()
    assert body["phase"] == "sold_out" and body["remaining_inventory"] == 0
    assert Decimal(body["price"]) == Decimal("10.00")
