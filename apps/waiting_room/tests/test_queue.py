"""The queue itself: places, the draw at the start, first come first served after it, the
back-of-queue lane, and what a shopper's place says at each step (real Redis scripts)."""

import random
import time
from datetime import timedelta

import pytest

from apps.core.errors import ApplicationError
from apps.sales.services import sale_publish, sale_start_now
from apps.waiting_room.services import (
    admission_finish,
    waiting_room_join,
    waiting_room_position,
)

from .helpers import PRE_QUEUE, room, snapshot, tick, wait_until

pytestmark = pytest.mark.django_db


def spearman(xs, ys) -> float:
    """Spearman's rank correlation of two sequences without ties."""
    n = len(xs)
    rank_x = {v: i for i, v in enumerate(sorted(xs))}
    rank_y = {v: i for i, v in enumerate(sorted(ys))}
    d2 = sum((rank_x[x] - rank_y[y]) ** 2 for x, y in zip(xs, ys, strict=True))
    return 1 - 6 * d2 / (n * (n * n - 1))


def test_the_room_opens_pre_queue_minutes_before_the_start(make_sale, shopper):
    sale = make_sale(starts_in=timedelta(minutes=30), **PRE_QUEUE)
    with pytest.raises(ApplicationError) as early:
        waiting_room_join(sale=snapshot(sale), user_id=shopper.id)
    assert early.value.status == 425 and early.value.code == "waiting_room_closed"
    assert early.value.extra["opens_at"].endswith("Z")
    with pytest.raises(ApplicationError) as unknown:
        waiting_room_position(sale=snapshot(sale), user_id=shopper.id)
    assert unknown.value.status == 404 and unknown.value.code == "not_in_queue"


def test_joining_twice_keeps_the_place(make_sale, make_shopper):
    sale = make_sale(inventory=100, **PRE_QUEUE)
    first, second = make_shopper(), make_shopper()
    a = waiting_room_join(sale=snapshot(sale), user_id=first.id)
    b = waiting_room_join(sale=snapshot(sale), user_id=second.id)
    again = waiting_room_join(sale=snapshot(sale), user_id=first.id)
    assert (a["rank"], b["rank"], again["rank"]) == (1, 2, 1)
    assert a["status"] == "waiting" and a["websocket_url"].endswith(f"/ws/sales/{sale.id}/")
    assert again["position"] == 1 and again["estimated_wait_seconds"] >= 1


def test_pre_start_order_is_random_and_post_start_is_first_come_first_served(
    make_sale, django_user_model
):
    """2,000 joins before the start at random moments, then 200 after it.

    Statistic: Spearman's rho between the order of joining and the rank drawn at the start.
    Under a uniformly random order rho has mean 0 and standard deviation 1/sqrt(n-1) = 0.022
    for n = 2,000; the bound |rho| < 0.1 is 4.5 standard deviations (a false alarm about once
    in 150,000 runs), and a queue that kept join order would give rho = 1."""
    # Far enough ahead that the joins end before it however busy the machine is; then the
    # admin's "start now" (the joins took 4 s under load, past a start set 4 s ahead).
    sale = make_sale(inventory=50, starts_in=timedelta(minutes=5), **PRE_QUEUE)
    snap = snapshot(sale)
    early = list(range(10_000_000, 10_002_000))  # ids only: the room stores numbers
    random.shuffle(early)  # arrival order: random moments within the pre-queue window
    for user_id in early:
        body = waiting_room_join(sale=snap, user_id=user_id)
        assert body["rank"] == 0 and body["status"] == "waiting"  # drawn at the start
    sale_start_now(sale_id=sale.id)
    sale_publish(sale_id=sale.id)  # what its on_commit does (the test's transaction never commits)
    snap = snapshot(sale)
    assert snap.starts_ms <= time.time() * 1000 + 1000
    wait_until(snap.starts_ms)
    late = list(range(20_000_000, 20_000_200))
    late_ranks = [waiting_room_join(sale=snap, user_id=u)["rank"] for u in late]
    early_ranks = [waiting_room_position(sale=snap, user_id=u)["rank"] for u in early]

    assert sorted(early_ranks) == list(range(1, 2001))  # one place each, no ties, no gaps
    rho = spearman(list(range(len(early))), early_ranks)
    print(f"fairness: Spearman rho(join order, drawn rank) = {rho:+.4f} (n=2000)")
    assert abs(rho) < 0.1
    assert late_ranks == list(range(2001, 2201))  # strictly in join order, behind the draw
    # The ranks no longer change after the start.
    assert [waiting_room_position(sale=snap, user_id=u)["rank"] for u in early[:50]] == (
        early_ranks[:50]
    )

    # Admission follows the ranks: after a partial release, exactly the ranks up to
    # "now serving" are ready.
    sale_room = room(sale, admission_rate=50_000, max_active_shoppers=10**6)
    tick(sale_room)
    time.sleep(0.02)
    served = tick(sale_room).now_serving
    assert 0 < served < 2200
    ranks = dict(zip(early + late, early_ranks + late_ranks, strict=True))
    for user_id, rank in ranks.items():
        status = waiting_room_position(sale=snap, user_id=user_id, claim=False)["status"]
        assert (status == "ready") == (rank <= served)


def test_admission_is_in_rank_order_for_post_start_joins(make_sale):
    sale = make_sale(inventory=1000, **PRE_QUEUE)
    snap = snapshot(sale)
    users = list(range(30_000_000, 30_000_040))
    for user_id in users:
        waiting_room_join(sale=snap, user_id=user_id)
    sale_room = room(sale, admission_rate=100, max_active_shoppers=10**6)
    tick(sale_room)
    seen_ready = []
    deadline = time.time() + 5
    while len(seen_ready) < len(users) and time.time() < deadline:
        time.sleep(0.02)
        served = tick(sale_room).now_serving
        ready = [
            u
            for u in users
            if waiting_room_position(sale=snap, user_id=u, claim=False)["status"] == "ready"
        ]
        # Whoever is ready is always exactly the first `served` joiners.
        assert ready == users[: min(served, len(users))]
        seen_ready = ready
    assert seen_ready == users


def test_back_of_queue_waits_behind_everyone_not_flagged(make_sale):
    sale = make_sale(inventory=1000, starts_in=timedelta(seconds=2), **PRE_QUEUE)
    snap = snapshot(sale)
    waiting_room_join(sale=snap, user_id=1, back_of_queue=True)  # flagged, joined first
    for user_id in (2, 3, 4):
        waiting_room_join(sale=snap, user_id=user_id)
    wait_until(snap.starts_ms)
    waiting_room_join(sale=snap, user_id=5)  # after the start, not flagged
    waiting_room_join(sale=snap, user_id=6, back_of_queue=True)
    ranks = {u: waiting_room_position(sale=snap, user_id=u)["rank"] for u in range(1, 7)}
    assert sorted(ranks[u] for u in (2, 3, 4)) == [1, 2, 3]
    assert ranks[5] == 4 and ranks[1] == 5 and ranks[6] == 6
    sale_room = room(sale, admission_rate=1000, max_active_shoppers=10**6)
    tick(sale_room)
    time.sleep(0.01)
    assert tick(sale_room).now_serving == 6
    # A later unflagged joiner still goes ahead of flagged ones not yet served: none are left.
    assert waiting_room_position(sale=snap, user_id=6)["status"] == "ready"


def test_ready_place_carries_one_admission_that_stays_the_same(make_sale, shopper):
    sale = make_sale(inventory=5, **PRE_QUEUE)
    snap = snapshot(sale)
    waiting_room_join(sale=snap, user_id=shopper.id)
    sale_room = room(sale)
    tick(sale_room)
    time.sleep(0.02)
    assert tick(sale_room).now_serving == 1
    first = waiting_room_position(sale=snap, user_id=shopper.id)
    again = waiting_room_position(sale=snap, user_id=shopper.id)
    assert first["status"] == "ready" and first["position"] == 0
    assert first["admission_token"] and first["admission_expires_at"]
    from apps.waiting_room.tokens import admission_decode

    a, b = admission_decode(first["admission_token"]), admission_decode(again["admission_token"])
    assert a.jti == b.jti and a.expires_at == b.expires_at and a.sale_id == str(sale.id)
    assert a.user_id == shopper.id
    assert 100 <= a.expires_at - time.time() <= 121
    # The admission buys (the purchase finishes it), up to the shopper's limit of one.
    from apps.orders.services import order_reserve

    reservation = order_reserve(
        sale=snap, user_id=shopper.id, quantity=1, idempotency_key="k", admission=a
    )
    assert not admission_finish(sale_id=sale.id, user_id=shopper.id)  # already finished
    used = waiting_room_position(sale=snap, user_id=shopper.id)
    assert used["status"] == "expired" and used["admission_used"] is True
    assert used["order_id"] == reservation.body["order_id"]
    assert "admission_token" not in used


def test_a_missed_turn_reads_expired_and_joining_again_goes_to_the_back(make_sale):
    sale = make_sale(inventory=100, **PRE_QUEUE)
    snap = snapshot(sale)
    for user_id in (1, 2, 3):
        waiting_room_join(sale=snap, user_id=user_id)
    sale_room = room(sale, admission_rate=1000, max_active_shoppers=1, admission_ms=300)
    tick(sale_room)
    time.sleep(0.02)
    assert tick(sale_room).now_serving == 1  # shopper 1 is admitted but never comes
    time.sleep(0.35)
    assert tick(sale_room).now_serving == 2  # the window closed: the place went to 2
    assert waiting_room_position(sale=snap, user_id=1)["status"] == "expired"
    back = waiting_room_join(sale=snap, user_id=1)
    assert back["status"] == "waiting" and back["rank"] == 4 and back["position"] == 2
    assert waiting_room_position(sale=snap, user_id=1)["rank"] == 4
