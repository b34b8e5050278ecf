"""The checkout page in a real headless Chromium, with a real worker and gateway: each test
card ends on the right screen, followed live (the page polls when no WebSocket answers).
Screenshots go to test-output/checkout/."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from django.db import connections

from apps.payments.services import dead_letters_process

from .conftest import wait_for
from .test_services import ALWAYS_5XX, DECLINED, OK, SLOW, TIMEOUT_TWICE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[3] / "test-output" / "checkout"


@pytest.fixture
def browser_page():
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run .ci/install-system-packages")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
            )
            context = browser.new_context(viewport={"width": 1100, "height": 900})
            page = context.new_page()
            page.set_default_timeout(30_000)
            yield page
            context.close()
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_each_test_card_ends_on_the_right_screen(
    live_server,
    browser_page,
    worker_factory,
    make_sale,
    reserve,
    make_shopper,
    settings,
):
    settings.WS_PUBLIC_URL = f"ws://127.0.0.1:{_closed_port()}"  # no socket: the page polls
    worker_factory(PAYMENT_MAX_ATTEMPTS=3, PAYMENT_RETRY_CAP_SECONDS=1)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    shopper = make_shopper(password="pw-for-tests")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(shopper.username)
    page.get_by_label("Password").fill("pw-for-tests")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()

    sale = make_sale(inventory=10, max_per_user=10)
    # The slow card first: its client timeouts would otherwise follow the timeout card's and
    # open the shared circuit breaker, parking its retries for the open period.
    endings = {
        SLOW: "paid",
        OK: "paid",
        DECLINED: "declined",
        TIMEOUT_TWICE: "paid",
        ALWAYS_5XX: "cancelled",
    }
    try:
        _pay_with_each_card(page, live_server, sale, shopper, reserve, endings)
    finally:
        # Playwright's sync API runs this test in a greenlet with a context of its own, where
        # Django's per-context connections are invisible to pytest-django's teardown.
        connections.close_all()
    assert not errors, errors


def _pay_with_each_card(page, live_server, sale, shopper, reserve, endings) -> None:
    for card, ending in endings.items():
        order = reserve(sale, shopper)
        page.goto(f"{live_server.url}/orders/{order.id}/pay/")
        page.locator("[data-reservation-left]").wait_for()
        page.get_by_label("Card number").fill(card)
        page.get_by_role("button", name="Pay").click()
        page.locator('[data-outcome="pending"], [data-outcome="paid"]').first.wait_for()
        if card == ALWAYS_5XX:
            # Retries exhausted: the dead-letter job (beat, every 30 s) releases it.
            wait_for(lambda o=order: dead_letters_process(), timeout=30, what="a dead letter")
        page.locator(f'[data-outcome="{ending}"]').wait_for(timeout=90_000)
        page.screenshot(path=str(SHOTS / f"{card}-{ending}.png"), full_page=True)
