"""Simulated sale: scripted bots against people, through the real join, position and purchase
endpoints (in-process WSGI, real middleware, real Redis and PostgreSQL), with the real releaser
step. Prints the share of units the bots got. Never part of the test suite.

    .venv/bin/python scripts/simulate_bots.py [--people 500] [--bots 50] [--units 100]

Each scenario is a fresh sale. Everyone who can joins during the pre-queue (the best a bot can
do: the room draws a random order at the start); 30% of the people arrive after the start and
queue behind. Admitted bots buy at once; admitted people buy 3-15 s later. Bot kinds:
- naive: calls the API directly (no page load, a library's User-Agent), 10 accounts per IP;
- stealth: a browser's headers and a loaded page, one IP and one device per account (an
  account farm behind residential proxies): nothing tells it from a person.
Runs in a database of its own (test_flashsale_sim) and a Redis key prefix of its own.
"""

from __future__ import annotations

import argparse
import heapq
import os
import random
import sys
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flashsale.settings.test")
os.environ.setdefault("TEST_RUN_NAME", "sim")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from django.utils import timezone  # noqa: E402

BROWSER = {
    "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36",
    "HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.9",
    "HTTP_SEC_FETCH_SITE": "same-origin",
    "HTTP_SEC_FETCH_MODE": "cors",
}


class Shopper:
    def __init__(self, user, kind: str, ip: str, device: str | None):
        from apps.core.tokens import shopper_token_issue
        from apps.protection.scoring import DEVICE_COOKIE, SEEN_COOKIE, cookie_sign

        self.user = user
        self.kind = kind  # person, naive, stealth
        self.client = Client(REMOTE_ADDR=ip)
        token, _ = shopper_token_issue(user_id=user.id, username=user.username)
        self.auth = f"Bearer {token}"
        self.headers = {"HTTP_USER_AGENT": "python-requests/2.32"} if kind == "naive" else BROWSER
        if device:
            # The page was loaded a while ago (it sets these two signed cookies).
            self.client.cookies[SEEN_COOKIE] = cookie_sign(f"{time.time() - 60:.3f}")
            self.client.cookies[DEVICE_COOKIE] = cookie_sign(device)
        self.admission: str | None = None
        self.done = False
        self.back_of_queue = False

    @property
    def is_bot(self) -> bool:
        return self.kind != "person"

    def join(self, sale) -> int:
        from apps.protection.pow import pow_solve

        issued = self.client.get(f"/api/v1/flash_sales/{sale.id}/challenge", **self.headers)
        issued = issued.json()
        nonce = pow_solve(issued["challenge"], issued["difficulty"])
        response = self.client.post(
            f"/api/v1/flash_sales/{sale.id}/waiting_room",
            {"challenge": issued["challenge"], "nonce": nonce},
            content_type="application/json",
            HTTP_AUTHORIZATION=self.auth,
            **self.headers,
        )
        return response.status_code

    def poll(self, sale) -> bool:
        response = self.client.get(
            f"/api/v1/flash_sales/{sale.id}/waiting_room/position",
            HTTP_AUTHORIZATION=self.auth,
            **self.headers,
        )
        if response.status_code != 200:
            return False
        body = response.json()
        if body.get("admission_token"):
            self.admission = body["admission_token"]
            return True
        return False

    def buy(self, sale) -> int:
        response = self.client.post(
            f"/api/v1/flash_sales/{sale.id}/purchase",
            {},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {self.admission}",
            HTTP_X_IDEMPOTENCY_KEY=uuid.uuid4().hex,
            **self.headers,
        )
        self.done = True
        return response.status_code


def make_users(count: int, label: str):
    from django.contrib.auth import get_user_model

    User = get_user_model()
    stamp = uuid.uuid4().hex[:6]
    users = [User(username=f"{label}-{stamp}-{i}", password="!") for i in range(count)]
    return User.objects.bulk_create(users)


def run_scenario(*, name, people, bots, units, bot_kind, policy, difficulty, rng) -> dict:
    from apps.orders.models import Order
    from apps.sales.services import product_get_or_create, sale_create, sale_publish
    from apps.waiting_room.services import room_settings, waiting_room_tick

    start = timezone.now() + timedelta(seconds=6)
    sale = sale_create(
        product=product_get_or_create(name=f"Sim {name} {uuid.uuid4().hex[:6]}"),
        price=Decimal("10.00"),
        total_inventory=units,
        start_time=start,
        end_time=start + timedelta(minutes=10),
        max_per_user=1,
        pow_difficulty=difficulty,
        bot_policy=policy,
        bot_threshold=50,
        admission_rate=40,
        pre_queue_minutes=15,
    )
    sale_publish(sale_id=sale.id)

    crowd = [
        Shopper(u, "person", f"10.1.{i // 250}.{i % 250}", f"person-{i}")
        for i, u in enumerate(make_users(people, "person"))
    ]
    farm = []
    for i, u in enumerate(make_users(bots, "bot")):
        if bot_kind == "naive":
            farm.append(Shopper(u, "naive", f"10.9.0.{i // 10}", None))
        else:
            farm.append(Shopper(u, "stealth", f"10.8.{i // 250}.{i % 250}", f"farm-{i}"))
    late = set(rng.sample(range(people), k=int(people * 0.3)))
    early = [s for i, s in enumerate(crowd) if i not in late] + farm
    rng.shuffle(early)
    refused = 0
    for shopper in early:
        refused += shopper.join(sale) != 200
    while timezone.now() < start:
        time.sleep(0.05)
    for i in sorted(late, key=lambda _: rng.random()):
        refused += crowd[i].join(sale) != 200

    everyone = crowd + farm
    purchases: list[tuple[float, int, Shopper]] = []  # (when, tie-breaker, shopper)
    deadline = time.monotonic() + 90
    sale.refresh_from_db()
    room = room_settings(sale)
    sold = 0
    while time.monotonic() < deadline and sold < units:
        sold = Order.objects.filter(sale=sale).holding().count()
        waiting_room_tick(room=room, units_reserved=sold)
        now = time.monotonic()
        for shopper in everyone:
            if shopper.admission is None and not shopper.done and shopper.poll(sale):
                delay = 0.0 if shopper.is_bot else rng.uniform(3, 15)
                heapq.heappush(purchases, (now + delay, id(shopper), shopper))
        while purchases and purchases[0][0] <= time.monotonic():
            _, _, shopper = heapq.heappop(purchases)
            shopper.buy(sale)
        if not purchases and all(s.done or s.admission for s in everyone):
            break
        time.sleep(0.2)

    bot_ids = {s.user.id for s in farm}
    orders = list(Order.objects.filter(sale=sale).holding().values_list("user_id", flat=True))
    to_bots = sum(1 for user_id in orders if user_id in bot_ids)
    return {
        "scenario": name,
        "units_sold": len(orders),
        "to_bots": to_bots,
        "bot_share": to_bots / max(1, len(orders)),
        "fair_share": bots / (people + bots),
        "joins_refused": refused,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--bots", type=int, default=50)
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--difficulty", type=int, default=12)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    settings.RATELIMIT_ENABLE = False  # one process stands in for 550 browsers
    settings.CELERY_TASK_ALWAYS_EAGER = True  # flags recorded inline
    rng = random.Random(args.seed)
    old = setup_databases(verbosity=0, interactive=False)
    try:
        results = []
        for name, kind, policy in (
            ("naive bots, screen on (back of queue)", "naive", "back_of_queue"),
            ("naive bots, screen off", "naive", "off"),
            ("stealth farm, screen on (back of queue)", "stealth", "back_of_queue"),
        ):
            started = time.monotonic()
            result = run_scenario(
                name=name,
                people=args.people,
                bots=args.bots,
                units=args.units,
                bot_kind=kind,
                policy=policy,
                difficulty=args.difficulty,
                rng=rng,
            )
            result["seconds"] = round(time.monotonic() - started, 1)
            results.append(result)
            print(
                f"{name:42s} units {result['units_sold']:4d}  to bots {result['to_bots']:3d} "
                f"({result['bot_share']:.0%}; a fair share per account is "
                f"{result['fair_share']:.0%})  [{result['seconds']} s]",
                flush=True,
            )
    finally:
        from apps.core.redis import get_redis

        redis = get_redis()
        for key in redis.scan_iter(match=settings.REDIS_KEY_PREFIX + "*", count=1000):
            redis.delete(key)
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
