"""The live console in headless Chromium during a small simulated sale: shoppers join and buy
while the page is open, and its figures move over the WebSocket without a reload; the pause
control works from the page. Screenshots go to test-output/ops/."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from apps.operations.models import OperatorAction
from apps.sales.selectors import sale_snapshot
from apps.waiting_room.services import waiting_room_join
from conftest import admitted

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[3] / "test-output" / "ops"


def test_console_figures_move_live_during_a_sale(
    live_server,
    daphne,
    browser_page,
    make_sale,
    make_shopper,
    django_user_model,
    settings,
):
    # The session cookie is sent to the WebSocket only on the same host name as the pages.
    host = live_server.url.split("//", 1)[1].split(":", 1)[0]
    settings.WS_PUBLIC_URL = daphne.replace("127.0.0.1", host)
    SHOTS.mkdir(parents=True, exist_ok=True)
    django_user_model.objects.create_user(
        username="ops", password="an operator password", is_staff=True, is_superuser=True
    )
    sale = make_sale(title="Aurora sneakers, limited run", inventory=20, price="129.00")
    page = browser_page
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    page.goto(f"{live_server.url}/admin/login/?next=/ops/sales/{sale.id}/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", "an operator password")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/ops/sales/{sale.id}/")
    page.locator('[data-f="link"]', has_text="live").wait_for()
    page.screenshot(path=str(SHOTS / "console-1-before.png"), full_page=True)
    loaded = len(navigations)

    # The sale happens: ten shoppers queue, five buy.
    snapshot = sale_snapshot(str(sale.id))
    for _ in range(10):
        waiting_room_join(sale=snapshot, user_id=make_shopper().id)
    with httpx.Client(base_url=live_server.url, timeout=10) as http:
        for _ in range(5):
            buyer = make_shopper()
            auth = admitted(buyer, sale)["HTTP_AUTHORIZATION"]
            response = http.post(
                f"/api/v1/flash_sales/{sale.id}/purchase",
                content=json.dumps({"quantity": 1}),
                headers={
                    "Authorization": auth,
                    "Content-Type": "application/json",
                    "X-Idempotency-Key": uuid.uuid4().hex,
                },
            )
            assert response.status_code == 201, response.text

    page.locator('[data-f="units_held"]', has_text="5").wait_for(timeout=15_000)
    page.locator('[data-f="units_left"]', has_text="15").wait_for()
    page.locator('[data-f="queue_main"]', has_text="10").wait_for()
    page.screenshot(path=str(SHOTS / "console-2-selling.png"), full_page=True)

    page.get_by_role("button", name="Pause admission").click()
    page.locator("#control-status", has_text="Done: pause").wait_for()
    page.locator('[data-f="phase"]', has_text="admission paused").wait_for()
    page.screenshot(path=str(SHOTS / "console-3-paused.png"), full_page=True)

    assert len(navigations) == loaded, "the figures moved without a reload"
    assert OperatorAction.objects.filter(sale=sale, action="pause_admission").count() == 1
