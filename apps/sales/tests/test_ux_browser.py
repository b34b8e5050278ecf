"""The shop as a shopper and an admin meet it, in one headless Chromium session: every page
at desktop (1440x900) and phone (390x844) size, axe-core on each (no serious or critical
violation), no console error anywhere, keyboard-only sign-in, the shopper's own state on the
shared sale page, My orders, the waiting room's advice and "your turn" tab title and icon,
"notify me" when units come back, and the live-sale guard in the admin. Screenshots go to
test-output/ux/."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from apps.core.testing.browser import chromium_browser
from apps.orders.models import Order
from apps.orders.services import order_reserve
from apps.orders.services.transitions import order_transition
from apps.sales.selectors import sale_snapshot
from apps.sales.services import sale_inventory_grow

from .test_browser import daphne, releaser  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS = ROOT / "test-output" / "ux"
AXE = ROOT / "apps" / "core" / "tests" / "vendor" / "axe.min.js"  # axe-core 4.11.0, pinned
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


def _reserve(sale, user, key):
    body = order_reserve(
        sale=sale_snapshot(str(sale.id)), user_id=user.id, quantity=1, idempotency_key=key
    ).body
    return Order.objects.get(id=body["order_id"])


_AXE_SOURCE: list[str] = []


def _axe_source() -> str:
    if not _AXE_SOURCE:
        _AXE_SOURCE.append(AXE.read_text())
    return _AXE_SOURCE[0]


class Session:
    """One browser context, with axe, screenshots and a console watch."""

    def __init__(self, browser, base_url: str, name: str, viewport: dict, problems: list):
        self.name = name
        self.base_url = base_url
        self.problems = problems
        self.context = browser.new_context(
            viewport=viewport, is_mobile=viewport is PHONE, has_touch=viewport is PHONE
        )
        self.page = self.context.new_page()
        self.page.set_default_timeout(20_000)
        self.page.on("pageerror", lambda error: problems.append(f"{name} JS error: {error}"))
        self.page.on(
            "console",
            lambda msg: (
                problems.append(f"{name} console {msg.type}: {msg.text} @ {self.page.url}")
                if msg.type == "error"
                else None
            ),
        )

    def goto(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def check(self, shot: str) -> None:
        """axe-core on the page as it is now, then a full-page screenshot."""
        # Through DevTools, not a <script> tag: the shop's CSP rightly refuses inline scripts.
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            self.page.evaluate(_axe_source())
        result = self.page.evaluate(
            "axe.run(document, {resultTypes: ['violations']})"
            ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact,"
            " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)})))"
        )
        for violation in result:
            if violation["impact"] in ("serious", "critical"):
                self.problems.append(f"{self.name} axe on {self.page.url}: {violation}")
        self.page.screenshot(path=str(SCREENSHOTS / f"{shot}-{self.name}.png"), full_page=True)

    def sign_in_with_the_keyboard(self, next_path: str, username: str, password: str) -> None:
        self.goto(f"/accounts/login/?next={next_path}")
        # The username field has the focus (autofocus), or a few Tabs reach it; the rest is
        # typing, Tab and Enter.
        for _ in range(12):
            if self.page.evaluate("() => document.activeElement.id") == "id_username":
                break
            self.page.keyboard.press("Tab")
        else:
            pytest.fail("the username field cannot be reached with the keyboard")
        self.page.keyboard.type(username)
        self.page.keyboard.press("Tab")
        self.page.keyboard.type(password)
        self.page.keyboard.press("Enter")
        self.page.wait_for_url(self.base_url + next_path)


@pytest.fixture
def chromium():
    with chromium_browser() as browser:
        yield browser


def test_shop_and_admin_pages_desktop_and_phone(
    live_server,
    daphne,  # noqa: F811
    releaser,  # noqa: F811
    chromium,
    make_sale,
    make_shopper,
    settings,
    django_user_model,
):
    settings.WS_PUBLIC_URL = daphne
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    password = "a long enough password"
    grace = make_shopper(username="grace", password=password)
    make_shopper(username="henry", password=password)
    other = make_shopper()
    django_user_model.objects.create_superuser("boss", "boss@example.com", "boss-pass-123")

    queue_sale = make_sale(
        title="Aurora sneakers", inventory=5, starts_in=timedelta(seconds=25), pow_difficulty=8
    )
    paid_sale = make_sale(title="Paid kettle", inventory=5)
    order = _reserve(paid_sale, grace, "p")
    order_transition(order_id=order.id, from_status="RESERVED", to_status="PAID")
    paid = order
    reserved_sale = make_sale(title="Reserved lamp", inventory=5)
    reserved = _reserve(reserved_sale, grace, "r")
    gone_sale = make_sale(title="Gone jacket", inventory=1, pow_difficulty=8)
    _reserve(gone_sale, other, "g")
    declined_sale = make_sale(title="Declined hat", inventory=5)
    declined = _reserve(declined_sale, grace, "d")
    order_transition(order_id=declined.id, from_status="RESERVED", to_status="CANCELLED")
    ended_sale = make_sale(
        title="Over scarf", starts_in=-timedelta(hours=2), duration=timedelta(hours=1)
    )

    desktop = Session(chromium, live_server.url, "desktop", DESKTOP, problems)
    phone = Session(chromium, live_server.url, "phone", PHONE, problems)

    # Signed out: the reason on the sign-in page, sign-up and reset pages.
    for s in (desktop, phone):
        s.goto(f"/accounts/login/?next=/sales/{queue_sale.id}/queue/")
        s.page.get_by_text("Sign in to join the queue for Aurora sneakers.").wait_for()
        s.check("01-login")
        s.goto("/accounts/signup/")
        s.check("02-signup")
    desktop.goto("/accounts/password_reset/")
    desktop.check("03-password-reset")

    # Grace signs in with the keyboard alone and lands in the waiting room.
    d = desktop.page
    desktop.sign_in_with_the_keyboard(f"/sales/{queue_sale.id}/queue/", "grace", password)
    d.locator('[data-queue][data-state="waiting"]').wait_for(timeout=60_000)
    d.get_by_text("Keep this tab open.", exact=True).wait_for()
    desktop.check("04-queue-waiting")

    # Meanwhile, the list: the sold-out sale says so, the live one says live.
    phone.sign_in_with_the_keyboard("/", "henry", password)
    card = phone.page.locator("[data-sale-card]", has_text="Gone jacket")
    card.locator("[data-countdown-label]", has_text="Sold out").wait_for()
    assert "Live now" not in card.inner_text()
    phone.check("05-home")
    phone.goto(f"/sales/{ended_sale.id}/")
    phone.page.get_by_text("This sale has ended.").wait_for()
    assert phone.page.locator("[data-units-left-row]").is_hidden()
    assert phone.page.locator("[data-join]").is_hidden()
    phone.check("06-sale-ended")

    # Henry opens the sold-out sale's queue and asks to be told when units come back.
    phone.goto(f"/sales/{gone_sale.id}/queue/")
    phone.page.locator('[data-queue][data-state="sold_out"]').wait_for(timeout=30_000)
    phone.page.get_by_role("button", name="Notify me if units come back").click()
    phone.page.locator("[data-notify-on]").wait_for()
    phone.check("07-queue-sold-out-notify")

    # The start: Grace's turn comes; the tab's title and icon say so.
    d.locator('[data-queue][data-state="admitted"]').wait_for(timeout=60_000)
    assert d.title().startswith("It's your turn")
    assert "favicon-turn" in d.get_attribute('link[rel="icon"]', "href")
    assert d.evaluate("document.activeElement.dataset.buy !== undefined")
    desktop.check("08-queue-admitted")

    # The admin adds units to the live, sold-out sale: Henry's page rejoins by itself.
    sale_inventory_grow(sale_id=gone_sale.id, total_inventory=2)
    phone.page.wait_for_function(
        "() => ['joining', 'waiting', 'admitted', 'not-started'].includes("
        "document.querySelector('[data-queue]').dataset.state)",
        timeout=30_000,
    )

    # Grace's own state on the shared sale pages, and My orders.
    for s in (desktop, phone):
        if s is phone:
            s.context.clear_cookies()
            s.sign_in_with_the_keyboard("/orders/", "grace", password)
        s.goto(f"/sales/{paid_sale.id}/")
        s.page.get_by_text("You bought this.").wait_for()
        assert s.page.locator("[data-join]").is_hidden()
        s.check("09-sale-bought")
        s.goto(f"/sales/{reserved_sale.id}/")
        s.page.get_by_text(re.compile(r"Your reservation ends in 0?[45]:\d\d")).wait_for()
        pay = s.page.get_by_role("link", name="Pay now")
        assert pay.get_attribute("href") == f"/orders/{reserved.id}/pay/"
        assert s.page.locator("[data-join]").is_hidden()
        s.check("10-sale-reserved")
        s.goto(f"/sales/{reserved_sale.id}/queue/")
        s.page.locator('[data-queue][data-state="reserved"]').wait_for()
        s.check("11-queue-reserved")
        if s is desktop:
            # Bought: the queue page says so instead of queueing again.
            s.goto(f"/sales/{paid_sale.id}/queue/")
            s.page.locator('[data-queue][data-state="bought"]').wait_for()
            # An order that ended unpaid: told so, and free to join again.
            s.goto(f"/sales/{declined_sale.id}/")
            s.page.get_by_text(re.compile("ended without a purchase")).wait_for()
            assert s.page.get_by_role("link", name="Join the waiting room").is_visible()
        s.goto("/orders/")
        s.page.get_by_role("heading", name="My orders").wait_for()
        s.page.locator(f'[data-order-row] a[href="/orders/{reserved.id}/pay/"]').wait_for()
        s.page.wait_for_function(
            "() => /^0?[45]:\\d\\d$/.test(document.querySelector('[data-row-left]').textContent)"
        )
        s.check("12-my-orders")
        s.goto(f"/orders/{paid.id}/")
        s.page.get_by_text("This page is your receipt").wait_for()
        s.check("13-receipt")

    # The admin: branding, the sale list with room at 1440 px, the live-sale guard, the add form.
    admin = Session(chromium, live_server.url, "desktop", DESKTOP, problems)
    a = admin.page
    admin.goto("/admin/login/?next=/admin/sales/flashsale/")
    a.fill("#id_username", "boss")
    a.fill("#id_password", "boss-pass-123")
    a.keyboard.press("Enter")
    a.wait_for_url("**/admin/sales/flashsale/")
    assert "Drop · shop admin" in a.inner_text("#site-name")
    table = a.locator("#result_list").bounding_box()
    filters = a.locator("#changelist-filter").bounding_box()
    assert table["x"] + table["width"] <= filters["x"], (table, filters)
    admin.check("20-admin-sale-list")
    admin.goto(f"/admin/sales/flashsale/{paid_sale.id}/change/")
    a.get_by_text("Inventory can only grow").wait_for()
    assert a.locator('input[name="price"]').count() == 0
    assert a.locator('input[name="total_inventory"]').count() == 1
    admin.check("21-admin-live-sale")
    admin.goto("/admin/sales/flashsale/add/")
    assert "DatabaseDefault" not in a.content()
    a.fill("#id_start_time", "2031-05-01T18:00")
    a.fill("#id_duration", "45m")
    a.locator("[data-sale-preview]", has_text="Starts in").wait_for()
    a.locator("[data-sale-preview]", has_text="until 2031-05-01 18:45 UTC").wait_for()
    admin.check("22-admin-sale-add")
    admin_phone = Session(chromium, live_server.url, "phone", PHONE, problems)
    admin_phone.context.add_cookies(admin.context.cookies())
    admin_phone.goto(f"/admin/sales/flashsale/{paid_sale.id}/change/")
    admin_phone.check("21-admin-live-sale")
    admin_phone.goto("/admin/sales/flashsale/")
    admin_phone.check("20-admin-sale-list")

    for s in (desktop, phone, admin, admin_phone):
        s.context.close()
    assert not problems, "\n".join(problems)
