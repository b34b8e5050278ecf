#!/usr/bin/env python3
"""Walk the demo that `make run` serves, in headless Chromium, as five shoppers: sign in,
wait on the countdown, join the waiting room, get admitted, buy, and pay with each test card;
then one more whose card is declined, who queues again and pays with another card; print
how each one ended and save a screenshot of every step under test-output/demo/.
Then a support desk refunds the first shopper's payment directly at the gateway, and the
shopper's order page shows it refunded once the shop's reconciliation has seen it.

    make run                                # in one terminal
    .venv/bin/python scripts/demo_walkthrough.py [--base-url http://127.0.0.1:8000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from apps.core.testing.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

SHOTS = ROOT / "test-output" / "demo"
CARDS = [
    ("4242424242424242", "paid"),
    ("4000000000000002", "declined"),
    ("4000000000009995", "paid"),  # two timeouts, then success on the same key
    ("4000000000000119", "cancelled"),  # 5xx every time: released once retries run out
    ("4000000000003220", "paid"),  # 20 s at the gateway
]


def manage(*args: str) -> str:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ,
    ).stdout


def walk(browser, base: str, sale_id: str, username: str, card: str) -> tuple[str, list]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def shot(step: str) -> None:
        page.screenshot(path=str(SHOTS / f"{username}-{step}.png"), full_page=True)

    page.goto(f"{base}/accounts/login/?next=/sales/{sale_id}/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("shop-demo-pass")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/sales/{sale_id}/")
    shot("1-countdown")
    page.get_by_role("link", name="Join the waiting room").click()
    page.wait_for_url(f"{base}/sales/{sale_id}/queue/")
    page.locator(
        '[data-queue][data-state="waiting"], [data-queue][data-state="admitted"]'
    ).first.wait_for()
    shot("2-queue")
    page.locator('[data-queue][data-state="admitted"]').wait_for(timeout=180_000)
    shot("3-admitted")
    page.get_by_role("button", name="Buy now").click()
    page.wait_for_url(f"{base}/orders/**")
    page.get_by_role("heading", name="Your unit is reserved").wait_for()
    shot("4-reserved")
    page.get_by_role("link", name="Pay").first.click()
    page.wait_for_url(f"{base}/orders/**/pay/")
    page.get_by_label("Card number").fill(card)
    page.get_by_label("Expiry date").fill("12 / 40")
    page.get_by_label("Security code").fill("123")
    page.get_by_label("Name on card").fill(username)
    page.get_by_role("button", name="Pay").click()
    ending = page.locator("[data-outcome]:not([hidden])")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-outcome]')].some(e => !e.hidden && "
        "e.dataset.outcome !== 'pending')",
        timeout=240_000,
    )
    outcome = [
        o for o in ending.evaluate_all("els => els.map(e => e.dataset.outcome)") if o != "pending"
    ]
    shot("5-outcome")
    context.close()
    return (outcome[0] if outcome else "?"), errors


def walk_decline_then_rebuy(browser, base: str, sale_id: str, username: str) -> tuple[str, list]:
    """A declined card, then back to the sale, queue again (at the back) and buy with
    another card: a decline must not lock the shopper out of the sale."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def shot(step: str) -> None:
        page.screenshot(path=str(SHOTS / f"{username}-{step}.png"), full_page=True)

    def buy_and_pay(card: str, step: str) -> str:
        page.locator('[data-queue][data-state="admitted"]').wait_for(timeout=180_000)
        page.get_by_role("button", name="Buy now").click()
        page.wait_for_url(f"{base}/orders/**")
        page.get_by_role("heading", name="Your unit is reserved").wait_for()
        page.get_by_role("link", name="Pay").first.click()
        page.wait_for_url(f"{base}/orders/**/pay/")
        page.get_by_label("Card number").fill(card)
        page.get_by_label("Expiry date").fill("12 / 40")
        page.get_by_label("Security code").fill("123")
        page.get_by_label("Name on card").fill(username)
        page.get_by_role("button", name="Pay").click()
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-outcome]')].some(e => !e.hidden && "
            "e.dataset.outcome !== 'pending')",
            timeout=240_000,
        )
        shot(step)
        outcomes = page.locator("[data-outcome]:not([hidden])").evaluate_all(
            "els => els.map(e => e.dataset.outcome)"
        )
        return next((o for o in outcomes if o != "pending"), "?")

    page.goto(f"{base}/accounts/login/?next=/sales/{sale_id}/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("shop-demo-pass")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/sales/{sale_id}/")
    page.get_by_role("link", name="Join the waiting room").click()
    page.wait_for_url(f"{base}/sales/{sale_id}/queue/")
    first = buy_and_pay("4000000000000002", "1-declined")
    if first != "declined":
        context.close()
        return f"first payment {first!r}, not declined", errors
    # Back to the sale and into the queue again: the page offers a new turn.
    page.get_by_role("link", name="Back to the sale").click()
    page.wait_for_url(f"{base}/sales/{sale_id}/")
    page.get_by_role("link", name="Join the waiting room").click()
    page.wait_for_url(f"{base}/sales/{sale_id}/queue/")
    state = page.locator(
        '[data-queue][data-state="expired"], [data-queue][data-state="waiting"], '
        '[data-queue][data-state="admitted"], [data-queue][data-state="already"]'
    ).first
    state.wait_for()
    shot("2-queue-again")
    if state.get_attribute("data-state") == "already":
        context.close()
        return "locked out: the queue page says the shopper already has an order", errors
    if state.get_attribute("data-state") == "expired":
        page.get_by_role("button", name="Join again").click()
    outcome = buy_and_pay("4242424242424242", "3-paid")
    context.close()
    return outcome, errors


def refund_at_gateway(browser, base: str, gateway_url: str, sale_id: str, username: str) -> str:
    """Refund a shopper's paid order at the gateway, behind the shop's back; run the
    reconciliation the beat runs every minute (the walk does not wait for it); the order page
    must then say Refunded. Returns the order's status as the page shows it."""
    out = manage(
        "shell",
        "-c",
        "from apps.payments.models import Payment\n"
        f"p = Payment.objects.filter(order__sale_id='{sale_id}', "
        f"order__user__username='{username}', status='SUCCEEDED').first()\n"
        "print('PAID', p.order_id, p.gateway_charge_id) if p else None",
    )
    # (the shell may print a banner line of its own first)
    found = next((line.split()[1:] for line in out.splitlines() if line.startswith("PAID ")), [])
    if len(found) != 2:
        return "no paid order to refund"
    order_id, charge_id = found
    httpx.post(
        f"{gateway_url}/v1/refunds",
        json={"charge_id": charge_id, "idempotency_key": f"support-desk-{charge_id}"},
        timeout=10,
    ).raise_for_status()
    print(f"{username}: charge {charge_id} refunded at the gateway; reconciling", flush=True)
    manage("reconcile_payments")
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/accounts/login/?next=/orders/{order_id}/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("shop-demo-pass")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/orders/{order_id}/")
    status = page.locator("[data-order]").get_attribute("data-status") or "?"
    page.screenshot(path=str(SHOTS / f"{username}-6-refunded-at-gateway.png"), full_page=True)
    context.close()
    return status.lower()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--starts-in", default="40s")
    parser.add_argument(
        "--only-rebuy", action="store_true", help="walk only the decline-then-rebuy shopper"
    )
    parser.add_argument(
        "--gateway-url", default=os.environ.get("PAYMENT_GATEWAY_URL", "http://127.0.0.1:8010")
    )
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flashsale.settings.base")
    SHOTS.mkdir(parents=True, exist_ok=True)
    sale_id = (
        manage(
            "create_flash_sale",
            "--product",
            "Walkthrough lamp",
            "--inventory",
            "20",
            "--starts-in",
            args.starts_in,
            "--duration",
            "30m",
            "--pow-difficulty",
            "12",
        )
        .strip()
        .splitlines()[-1]
    )
    manage("create_shoppers", str(len(CARDS)), "--prefix", "walker", "--out", os.devnull)
    manage("create_shoppers", "1", "--prefix", "rebuyer", "--out", os.devnull)
    print(f"sale {sale_id} starts in {args.starts_in}")
    results = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for n, (card, want) in enumerate([] if args.only_rebuy else CARDS, start=1):
            started = time.monotonic()
            got, errors = walk(browser, args.base_url, sale_id, f"walker{n:06d}", card)
            results.append(got == want and not errors)
            print(
                f"walker{n:06d}: card {card} ended {got!r} (expected {want!r})"
                f"{' page errors: ' + str(errors) if errors else ''} "
                f"[{time.monotonic() - started:.0f} s]",
                flush=True,
            )
        # A decline, then queue again and buy with another card.
        started = time.monotonic()
        got, errors = walk_decline_then_rebuy(browser, args.base_url, sale_id, "rebuyer000001")
        results.append(got == "paid" and not errors)
        print(
            f"rebuyer000001: declined, queued again, paid with another card: ended {got!r} "
            f"(expected 'paid'){' page errors: ' + str(errors) if errors else ''} "
            f"[{time.monotonic() - started:.0f} s]",
            flush=True,
        )
        if not args.only_rebuy:
            got = refund_at_gateway(
                browser, args.base_url, args.gateway_url, sale_id, "walker000001"
            )
            print(f"walker000001: refund at the gateway, order ended {got!r} (expected 'refunded')")
            results.append(got == "refunded")
        browser.close()
    print(manage("audit_sale", sale_id))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
