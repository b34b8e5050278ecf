"""End to end in a real headless Chromium (Debian's, driven by Playwright's Python package):
sign in, wait on the countdown, join the waiting room (proof of work in a Web Worker), get
admitted by the real releaser, buy, see the reservation. A screenshot of each page goes to
test-output/screenshots/. The shopper's queue page follows the sale over a real WebSocket (a
daphne the test starts); a second shopper on a phone, whose WebSocket is refused, follows by
polling and sees the sale switch to sold out without reloading."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from apps.core.testing.browser import chromium_browser
from apps.core.testing.ports import free_port
from apps.core.testing.processes import process_stop
from apps.orders.models import Order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS = ROOT / "test-output" / "screenshots"


@pytest.fixture
def daphne():
    """daphne on a free port, sharing this test run's database and Redis keys."""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "apps.sales.tests.daphne_settings",
        "SHARED_REDIS_KEY_PREFIX": django_settings.REDIS_KEY_PREFIX,
        "SHARED_DATABASE_NAME": connection.settings_dict["NAME"],
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("daphne")),
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "flashsale.asgi:application",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("daphne did not start")
            time.sleep(0.2)
    yield f"ws://127.0.0.1:{port}"
    process_stop(process, wait_seconds=5)


@pytest.fixture
def releaser():
    """wr's releaser, ticking in a thread for the test's duration."""
    from apps.waiting_room.releaser import Releaser

    stop = threading.Event()

    def run():
        releaser = Releaser(tick_seconds=0.1, refresh_seconds=0.5)
        try:
            while not stop.is_set():
                releaser.tick_once()
                stop.wait(0.1)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=5)


@pytest.fixture
def browser_page():
    with chromium_browser() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(20_000)
        yield page
        context.close()


def test_shopper_signs_in_waits_joins_is_admitted_buys_and_sees_the_reservation(
    live_server, daphne, browser_page, releaser, make_sale, make_shopper, settings
):
    settings.WS_PUBLIC_URL = daphne
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    page = browser_page
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"JS error: {error}"))
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console: {msg.text}")
            if msg.type == "error" and "Content Security Policy" in msg.text
            else None
        ),
    )

    shopper = make_shopper(username="grace", password="a long enough password")
    sale = make_sale(
        title="Aurora sneakers, limited run",
        inventory=1,
        price="129.00",
        starts_in=timedelta(seconds=20),
        pre_queue_minutes=15,
    )

    # This device's clock is an hour fast: by it, the sale would already be over. Every
    # countdown must follow the server's clock instead (offset measured on load).
    page.clock.install(time=timezone.now() + timedelta(hours=1))

    def shot(name: str) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    # Sign in.
    page.goto(f"{live_server.url}/accounts/login/?next=/")
    shot("01-login")
    page.get_by_label("Username").fill("grace")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")

    # The list: the sale with its countdown, and the header names the shopper (via /me).
    page.get_by_text("Signed in as").wait_for()
    card = page.locator("[data-sale-card]", has_text="Aurora sneakers")
    card.locator("[data-countdown-label]", has_text="Starts in").wait_for()
    shot("02-sales")

    # The sale page: countdown on the server's clock, join button.
    card.get_by_role("link").click()
    page.wait_for_url(f"{live_server.url}/sales/{sale.id}/")
    page.locator("[data-countdown-label]", has_text="Starts in").wait_for()
    left = page.text_content("[data-countdown-value]")
    assert left.startswith("00:") and int(left[3:]) <= 20, left  # not an hour off
    assert "129.00 USD" in page.text_content("main")
    shot("03-sale-countdown")

    # The waiting room: proof of work, then a place drawn at the start. The page asks the
    # server about its own place only when its turn may have come (here: once, at the start,
    # for the drawn rank) or once a minute, never on every update.
    asked = []
    page.on("request", lambda r: asked.append(r.url) if "/position" in r.url else None)
    page.get_by_role("link", name="Join the waiting room").click()
    page.wait_for_url(f"{live_server.url}/sales/{sale.id}/queue/")
    page.locator('[data-queue][data-state="waiting"]').wait_for(timeout=60_000)
    shot("04-queue-waiting")

    page.get_by_text("Live updates on.").wait_for()

    # A second shopper watches the sale page on a phone, WebSocket refused (polling fallback).
    phone = page.context.browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    phone_page = phone.new_page()
    phone_page.route_web_socket("**/*", lambda ws: ws.close())
    phone_page.goto(f"{live_server.url}/sales/{sale.id}/")
    phone_page.locator("[data-countdown-label]", has_text="Starts in").wait_for()
    phone_page.screenshot(path=str(SCREENSHOTS / "03b-sale-phone.png"), full_page=True)

    # The start: the admission comes over the WebSocket; the page offers Buy.
    polls = []
    page.on("request", lambda r: polls.append(r.url) if "now_serving" in r.url else None)
    page.locator('[data-queue][data-state="admitted"]').wait_for(timeout=60_000)
    shot("05-admitted")
    assert polls == []  # followed over the socket, not by polling
    assert len(asked) <= 2, asked
    page.get_by_role("button", name="Buy now").click()

    # The reservation: status, countdown, pay link.
    page.wait_for_url(f"{live_server.url}/orders/**", timeout=20_000)
    page.get_by_role("heading", name="Your unit is reserved").wait_for()
    page.wait_for_function(
        "document.querySelector('[data-reservation-left]').textContent.match(/^0?[45]:\\d\\d$/)"
    )
    shot("06-reservation")

    order = Order.objects.get(user=shopper, sale=sale)
    assert order.status == "RESERVED"
    pay = page.get_by_role("link", name="Pay 129.00 USD")
    assert pay.get_attribute("href") == f"/orders/{order.id}/pay/"
    assert page.url == f"{live_server.url}/orders/{order.id}/"
    assert not problems, problems

    # The one unit is taken: the phone's page, never reloaded, says so.
    phone_page.locator("[data-countdown-label]", has_text="Sold out").wait_for()
    assert phone_page.get_by_role("link", name="Join the waiting room").is_hidden()
    phone_page.screenshot(path=str(SCREENSHOTS / "07-sold-out-phone.png"), full_page=True)
    # And a shopper who signs in on the phone and opens the queue is told at once.
    phone_page.goto(f"{live_server.url}/accounts/login/?next=/sales/{sale.id}/queue/")
    make_shopper(username="ada", password="another long password")
    phone_page.get_by_label("Username").fill("ada")
    phone_page.get_by_label("Password").fill("another long password")
    phone_page.get_by_role("button", name="Sign in").click()
    phone_page.locator('[data-queue][data-state="sold_out"]').wait_for(timeout=30_000)
    phone_page.screenshot(path=str(SCREENSHOTS / "08-queue-sold-out-phone.png"), full_page=True)
    phone.close()
