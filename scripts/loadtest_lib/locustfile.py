"""Locust journeys for scripts/loadtest (a sale simulator against a running server).

Shoppers open the sale page, join the waiting room, follow the queue as the page does
(static/js/queue.js with its socket refused: the public now_serving every 1-2 s, /position
only when their rank is reached or once a minute), buy once admitted, then pay with a card
from the mix (success, decline, timeout) or abandon. Bots skip the page, join, poll
/position hard and buy at once. Everyone arrives in the start second (the thundering herd):
users are spawned before the start and wait for it.

Configured by LOADTEST_CONFIG (a JSON file written by run.py): sale id, start (epoch s),
credentials, card mix. Writes LOADTEST_RESULTS (JSON) at the end: errors by endpoint and
code, admissions, purchases, payments, and what waiting cost the origin.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from collections import Counter

from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.exception import StopUser

CONFIG = json.loads(open(os.environ["LOADTEST_CONFIG"]).read())  # noqa: SIM115
SALE = CONFIG["sale_id"]
START = CONFIG["start_epoch"]
CARDS = CONFIG["cards"]  # [[card, weight], ...]; a None card abandons
_lock = threading.Lock()
_people = list(CONFIG["shoppers"])
_bots = list(CONFIG["bots"])
random.shuffle(_people)
random.shuffle(_bots)
codes: Counter = Counter()
journey: Counter = Counter()
# What the waiting costs the origin: /position asks made between the join and the end of the
# wait (now_serving is public and cached by nginx or a CDN, so not counted), and the seconds
# spent waiting, summed over shoppers (bots are counted apart: they poll hard on purpose).
waiting: Counter = Counter()


def _json(response) -> dict:
    if not response.headers.get("content-type", "").startswith("application/json"):
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _take(pool):
    with _lock:
        return pool.pop() if pool else None


def _count(name: str, code: int) -> None:
    with _lock:
        codes[f"{name} {code}"] += 1


def _card():
    cards, weights = zip(*CARDS, strict=True)
    return random.choices(cards, weights)[0]


# A browser's headers on every request a shopper makes; bots send Locust's own User-Agent,
# no Accept-Language and no Fetch Metadata, and skip the page: the join screen scores them.
BROWSER_HEADERS = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36",
    "Accept-Language": "en-GB,en;q=0.9",
    "Sec-Fetch-Site": "same-origin",
}


class Journey(FastHttpUser):
    """The purchase journey shared by shoppers and bots (FastHttpUser: one Locust process on
    this 2-core machine keeps up with the herd, where requests-based users measured their
    own CPU queue: every page took 5 s or more)."""

    abstract = True
    wait_time = between(0, 0)
    load_page = True
    think = (1.0, 4.0)
    kind = "shopper"
    # How a waiting page follows the queue (static/js/queue.js with its socket refused, the
    # costliest case): the public now_serving every 1-2 s (nginx or a CDN keeps it a second),
    # and /position only when the turn has come (again 2-4 s later if not yet ready), or once
    # a minute. A bot polls /position hard instead.
    follow_seconds = (1.0, 2.0)
    position_fallback_seconds = 60.0
    hammer_position = False

    def on_start(self):
        self.credential = _take(_people if self.kind == "shopper" else _bots)
        if self.credential is None:
            raise StopUser()
        self.auth = {"Authorization": f"Bearer {self.credential['token']}"}

    def call(self, method, path, name, **kwargs):
        if self.kind == "shopper":  # what a browser sends (a bot keeps Locust's own agent)
            kwargs["headers"] = {**BROWSER_HEADERS, **kwargs.get("headers", {})}
        with self.client.request(method, path, name=name, catch_response=True, **kwargs) as r:
            _count(name, r.status_code)
            if r.status_code < 500 and r.status_code != 0:
                r.success()  # 4xx answers are part of a sale (sold out, not yet, limits)
            return r

    def _waiting_request(self, why: str):
        with _lock:
            waiting[f"{self.kind} origin_requests"] += 1
            waiting[f"{self.kind} origin_requests {why}"] += 1

    def _position(self):
        r = self.call(
            "GET",
            f"/api/v1/flash_sales/{SALE}/waiting_room/position",
            "position",
            headers=self.auth,
        )
        return r, _json(r)

    def follow(self, place: dict) -> str | None:
        """Wait like the page: the admission token, or None (gave up or sold out)."""
        rank = place.get("rank") or None
        now_serving = int(place.get("now_serving") or 0)
        asked_at = time.time()
        next_ask = 0.0
        deadline = time.time() + CONFIG["patience_seconds"]
        while time.time() < deadline:
            now = time.time()
            turn = (rank is None and now >= START) or (rank is not None and now_serving >= rank)
            fallback = now - asked_at >= self.position_fallback_seconds
            if self.hammer_position or (now >= next_ask and (turn or fallback)):
                if not self.hammer_position and rank is None:
                    time.sleep(random.uniform(0, 5))  # the drawn ranks: spread over 5 s
                self._waiting_request("turn" if turn else "fallback")
                r, body = self._position()
                asked_at = time.time()
                next_ask = asked_at + random.uniform(2, 4)
                if body.get("admission_token"):
                    return body["admission_token"]
                if r.status_code == 410 or body.get("status") in ("sold_out", "expired", "ended"):
                    journey[f"{self.kind} saw sold out in the queue"] += 1
                    return None
                rank = body.get("rank") or rank
                now_serving = max(now_serving, int(body.get("now_serving") or 0))
            if self.hammer_position:
                time.sleep(0.2)
                continue
            r = self.call(
                "GET", f"/api/v1/flash_sales/{SALE}/waiting_room/now_serving", "now_serving"
            )
            public = _json(r)
            now_serving = max(now_serving, int(public.get("now_serving") or 0))
            if public.get("status") in ("sold_out", "ended", "cancelled"):
                journey[f"{self.kind} saw sold out in the queue"] += 1
                return None
            time.sleep(random.uniform(*self.follow_seconds))
        journey[f"{self.kind} gave up waiting"] += 1
        return None

    @task
    def buy(self):
        # Everyone arrives in the start second (the thundering herd): users are spawned
        # before it and wait for it; shoppers load the sale page first, bots go straight in.
        time.sleep(max(0.0, START - time.time()) + random.uniform(0, 1))
        if self.load_page:
            self.call("GET", f"/sales/{SALE}/", "page")
            # The page's script (static/js/account.js) asks /me on load: the shared page sets
            # no cookie, /me sets the page-load and device cookies the bot screen reads.
            self.call("GET", "/me", "me")
        r = self.call(
            "POST", f"/api/v1/flash_sales/{SALE}/waiting_room", "join", json={}, headers=self.auth
        )
        if r.status_code != 200:
            journey[f"{self.kind} join refused"] += 1
            raise StopUser()
        began = time.time()
        try:
            admission = _json(r).get("admission_token") or self.follow(_json(r))
        finally:
            with _lock:
                waiting[f"{self.kind} seconds"] += time.time() - began
                waiting[f"{self.kind} waited"] += 1
        if admission is None:
            raise StopUser()
        journey[f"{self.kind} admitted"] += 1
        if self.kind == "shopper":
            time.sleep(random.uniform(*self.think))
        r = self.call(
            "POST",
            f"/api/v1/flash_sales/{SALE}/purchase",
            "purchase",
            json={"quantity": 1},
            headers={"Authorization": f"Bearer {admission}", "X-Idempotency-Key": uuid.uuid4().hex},
        )
        if r.status_code != 201:
            journey[f"{self.kind} purchase {r.status_code}"] += 1
            raise StopUser()
        journey[f"{self.kind} reserved"] += 1
        order_id = r.json()["order_id"]
        card = _card() if self.kind == "shopper" else CARDS[0][0]
        if card is None:
            journey[f"{self.kind} abandoned"] += 1
            raise StopUser()
        time.sleep(random.uniform(0.5, 2.0))
        r = self.call(
            "POST",
            f"/api/v1/orders/{order_id}/pay",
            "pay",
            json={"card_number": card, "exp_month": "12", "exp_year": "2040", "cvc": "123"},
            headers=self.auth,
        )
        journey[f"{self.kind} pay {r.status_code}"] += 1
        raise StopUser()


class Shopper(Journey):
    weight = max(1, CONFIG["shopper_weight"])
    kind = "shopper"


class Bot(Journey):
    weight = CONFIG["bot_weight"]
    kind = "bot"
    load_page = False
    hammer_position = True
    think = (0.0, 0.0)


_progress_stop = threading.Event()


def _progress(environment):
    while not _progress_stop.wait(2.0):
        stats = environment.stats.total
        with _lock:
            reserved = sum(v for k, v in journey.items() if k.endswith("reserved"))
            admitted = sum(v for k, v in journey.items() if k.endswith("admitted"))
        print(
            f"\r[{time.strftime('%H:%M:%S')}] users {environment.runner.user_count:>6} "
            f"req {stats.num_requests:>8} ({stats.current_rps:7.0f}/s) "
            f"fail {stats.num_failures:>6} admitted {admitted:>6} reserved {reserved:>6}"
            f"/{CONFIG['units']}",
            end="",
            flush=True,
        )


@events.test_start.add_listener
def _start(environment, **_):
    threading.Thread(target=_progress, args=(environment,), daemon=True).start()


@events.quitting.add_listener
def _quit(environment, **_):
    _progress_stop.set()
    print()
    out = os.environ.get("LOADTEST_RESULTS")
    if out:
        with open(out, "w") as f:
            json.dump({"codes": dict(codes), "journey": dict(journey), "waiting": waiting}, f)
