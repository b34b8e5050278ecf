"""The estimated wait: a smoothed admission rate kept between a floor and the configured
rate, measured only while someone is waiting, so an idle room cannot drive it to zero; the
estimate is bounded and moves by less than 20 % between polls when nothing changes."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from apps.core.redis import get_redis
from apps.inventory.keys import sale_keys
from apps.waiting_room import redis_scripts
from apps.waiting_room.estimates import admission_rate_floor, wait_seconds
from apps.waiting_room.keys import room_keys
from conftest import bearer

from .helpers import PRE_QUEUE

pytestmark = pytest.mark.django_db

RATE, MAX_ACTIVE, ADMISSION_MS = 50, 200, 20_000  # floor: 200 per 20 s = 10/s
FLOOR = admission_rate_floor(rate=RATE, max_active=MAX_ACTIVE, admission_seconds=20)


class Room:
    """A live room in Redis driven by the real tick.lua on a clock the test moves."""

    def __init__(self, *, waiting: int, units: int = 20_000, max_active: int = MAX_ACTIVE):
        self.keys = room_keys(str(uuid.uuid4()))
        self.max_active = max_active
        redis = get_redis()
        inventory = sale_keys(self.keys.sale_id)
        redis.set(inventory.primed, 1)
        for start in range(0, units, 10_000):
            redis.sadd(inventory.free, *range(start, min(units, start + 10_000)))
        self.now = 1_800_000_000_000
        self.starts = self.now - 1
        self.add_waiting(waiting)
        self.tick(0)

    def add_waiting(self, count: int) -> None:
        redis = get_redis()
        state = redis.hget(self.keys.state, "sealed")
        if state:  # after the start: tickets at the back, as place.lua gives them
            redis.hincrby(self.keys.state, "mpost", count)
        else:
            first = redis.zcard(self.keys.pre)
            redis.zadd(self.keys.pre, {f"u{first + i}": first + i for i in range(count)})

    def tick(self, elapsed_ms: int):
        self.now += elapsed_ms
        return redis_scripts.tick(
            self.keys,
            rate=RATE,
            max_active=self.max_active,
            units_reserved=0,
            factor_percent=100_000,
            admission_ms=ADMISSION_MS,
            starts_ms=self.starts,
            closed=False,
            now_ms=self.now,
        )

    def run(self, seconds: float, every_ms: int = 100):
        result = None
        for _ in range(int(seconds * 1000 / every_ms)):
            result = self.tick(every_ms)
        return result


def estimate(position: int, measured_rate) -> int:
    return wait_seconds(
        position=position,
        measured_rate=measured_rate,
        rate=RATE,
        max_active=MAX_ACTIVE,
        admission_seconds=ADMISSION_MS // 1000,
    )


def test_an_idle_room_keeps_its_rate():
    """Before: once the queue was empty, every second measured 0 admitted and the rate
    halved each second (1.6e-136 after a while), so the next shopper's wait was a
    136-digit number. (A cap the 300 never reach: only the empty queue is idle here.)"""
    room = Room(waiting=300, max_active=600)
    busy = room.run(5)
    assert busy.measured_rate == pytest.approx(RATE, rel=0.05)
    idle = room.run(600, every_ms=1000)  # the queue ran empty ten minutes ago
    assert idle.waiting == 0 and idle.measured_rate == pytest.approx(RATE, rel=0.05)
    room.add_waiting(10)
    assert estimate(10, room.tick(100).measured_rate) <= 10 / RATE + 1


def test_idle_admitted_shoppers_slow_the_estimate_down_to_the_floor_only():
    """Admitted shoppers who do not buy hold the active cap: the room admits only as their
    admissions expire (10/s here), and the estimate counts it, but never below the pace
    the expiries guarantee."""
    room = Room(waiting=20_000)
    rates = [room.run(1).measured_rate for _ in range(300)]
    assert min(rates) >= FLOOR - 1e-9
    assert rates[-1] == pytest.approx(FLOOR, rel=0.1)
    assert estimate(1000, rates[-1]) == pytest.approx(1000 / FLOOR, rel=0.1)
    for before, after in zip(rates, rates[1:], strict=False):
        assert abs(estimate(1000, after) / estimate(1000, before) - 1) < 0.2


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    history=st.lists(
        st.tuples(
            st.integers(min_value=50, max_value=3000),  # ms since the previous tick
            st.sampled_from([0, 0, 1, 10, 400]),  # shoppers joining meanwhile
        ),
        min_size=1,
        max_size=60,
    ),
    position=st.integers(min_value=1, max_value=1_000_000),
)
def test_the_estimate_is_bounded_and_steady_over_any_rate_history(history, position):
    """Over any history of ticks and joins (the queue running empty, refilling; admitted
    shoppers never buy, so the active cap soon holds the room up): the rate stays between
    the floor and the configured rate, the estimate for a fixed position between
    position/rate and position/floor, and two estimates at most 3 s apart differ by less
    than 20 % (plus the rounding second)."""
    room = Room(waiting=50)
    previous, since = None, 0
    for elapsed_ms, joining in history:
        room.add_waiting(joining)
        measured = room.tick(elapsed_ms).measured_rate
        assert measured is None or FLOOR - 1e-9 <= measured <= RATE + 1e-9
        wait = estimate(position, measured)
        assert position / RATE <= wait <= position / FLOOR + 1
        since += elapsed_ms
        if previous is not None and since <= 3000:
            assert abs(wait - previous) <= 0.2 * previous + 1, (previous, wait)
        previous, since = wait, 0


def test_a_poll_after_a_long_idle_gives_a_bounded_estimate(client, make_sale, make_shopper):
    """Through HTTP, with the rate the old releaser left in Redis after a long idle."""
    sale = make_sale(
        admission_rate=10, max_active_shoppers=100, admission_token_seconds=100, **PRE_QUEUE
    )
    shoppers = [make_shopper() for _ in range(3)]
    for shopper in shoppers:
        joined = client.post(
            f"/api/v1/flash_sales/{sale.id}/waiting_room",
            data=json.dumps({}),
            content_type="application/json",
            **bearer(shopper),
        )
        assert joined.status_code == 200, joined.content
    get_redis().hset(room_keys(str(sale.id)).state, "rate", "1.6e-136")
    body = client.get(
        f"/api/v1/flash_sales/{sale.id}/waiting_room/position", **bearer(shoppers[-1])
    ).json()
    assert body["position"] == 3
    # floor: 100 admissions per 100 s = 1/s, so 3 ahead is at most about 3 s
    assert 0 < body["estimated_wait_seconds"] <= 4
    now_serving = client.get(f"/api/v1/flash_sales/{sale.id}/waiting_room/now_serving").json()
    assert 1 <= now_serving["admission_rate"] <= 10
