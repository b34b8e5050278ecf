"""The sliding-window rate limit: one Lua script per check on the shared Redis, per-process
counts when Redis errs."""

from __future__ import annotations

import time

import pytest
from django.conf import settings as django_settings

from apps.protection import ratelimits
from conftest import bearer

pytestmark = pytest.mark.django_db

SECOND = 1_000_000  # the script's clock is in microseconds


def _limits(settings, **overrides):
    limits = {group: dict(rule) for group, rule in django_settings.RATE_LIMITS.items()}
    for group, rates in overrides.items():
        limits[group].update(rates)
    settings.RATE_LIMITS = limits


def test_the_window_slides_instead_of_resetting_at_a_boundary():
    """3 per 60 s, the clock driven explicitly: three requests in the last moments of a
    wall-clock minute do not buy three more at the next minute; a slot comes back exactly
    when the oldest request leaves the window, and Retry-After says when."""
    key = django_settings.REDIS_KEY_PREFIX + "test:slide"
    t0 = 1_800_000_000 * SECOND - SECOND // 10  # 0.1 s before a minute boundary
    hits = [
        ratelimits.sliding_window_hit(key, limit=3, window_seconds=60, now_us=t0 + i * 10_000)
        for i in range(3)
    ]
    assert [h.allowed for h in hits] == [True, True, True]
    after_boundary = ratelimits.sliding_window_hit(
        key, limit=3, window_seconds=60, now_us=t0 + 200_000
    )
    assert not after_boundary.allowed
    assert after_boundary.retry_after == 60  # the oldest leaves 59.8 s later: rounded up
    almost = ratelimits.sliding_window_hit(
        key, limit=3, window_seconds=60, now_us=t0 + 60 * SECOND - 1
    )
    assert not almost.allowed and almost.retry_after == 1
    freed = ratelimits.sliding_window_hit(key, limit=3, window_seconds=60, now_us=t0 + 60 * SECOND)
    assert freed.allowed  # the first request left the window, its slot is free again
    again = ratelimits.sliding_window_hit(
        key, limit=3, window_seconds=60, now_us=t0 + 60 * SECOND + 1
    )
    assert not again.allowed  # the second and third are still inside it


def test_refused_requests_do_not_extend_the_wait():
    """A client hammering while limited still gets its slot back when the window says so."""
    key = django_settings.REDIS_KEY_PREFIX + "test:hammer"
    t0 = 1_800_000_000 * SECOND
    for i in range(2):
        assert ratelimits.sliding_window_hit(key, limit=2, window_seconds=1, now_us=t0 + i).allowed
    for i in range(50):
        assert not ratelimits.sliding_window_hit(
            key, limit=2, window_seconds=1, now_us=t0 + 10 + i * 10_000
        ).allowed
    assert ratelimits.sliding_window_hit(key, limit=2, window_seconds=1, now_us=t0 + SECOND).allowed


def test_user_limit_through_http_is_exactly_the_rate(client, make_sale, shopper, settings):
    """Over HTTP with Redis's own clock: exactly three 200s, then 429s (the fixed window let
    a fourth or fifth through when the test crossed its boundary)."""
    _limits(settings, challenge={"user": "3/h", "ip": "1000/h"})
    sale = make_sale()
    url = f"/api/v1/flash_sales/{sale.id}/challenge"
    statuses = [client.get(url, **bearer(shopper)).status_code for _ in range(6)]
    assert statuses == [200, 200, 200, 429, 429, 429]


def test_a_burst_across_a_second_boundary_is_still_limited(client, make_sale, shopper, settings):
    """3/s: three requests just before a wall-clock second boundary and three just after.
    A fixed window hands out three more after the boundary; a sliding one none."""
    _limits(settings, challenge={"user": "3/s", "ip": "1000/s"})
    sale = make_sale()
    url = f"/api/v1/flash_sales/{sale.id}/challenge"
    client.get(url)  # warm the view and the sale cache so the burst is quick
    deadline = time.time() + 5
    while not 0.8 <= time.time() % 1 <= 0.85:  # wait for the last 0.2 s of a wall-clock second
        assert time.time() < deadline
        time.sleep((0.8 - time.time() % 1) % 1)
    started = time.time()
    before = [client.get(url, **bearer(shopper)).status_code for _ in range(3)]
    boundary = int(started) + 1
    time.sleep(max(0.0, boundary - time.time()))
    after = [client.get(url, **bearer(shopper)).status_code for _ in range(3)]
    if time.time() - started >= 0.95:  # the box stalled for a whole window: inconclusive
        pytest.skip("the burst took longer than the window")
    assert before == [200, 200, 200]
    assert after == [429, 429, 429]


def test_per_process_fallback_also_slides(settings):
    """Redis unreachable: each process counts on its own, with the same sliding window."""
    t0 = 1_800_000_000.0 - 0.1
    for i in range(3):
        assert ratelimits._local_hit("k", limit=3, window_seconds=60, now=t0 + i / 100).allowed
    refused = ratelimits._local_hit("k", limit=3, window_seconds=60, now=t0 + 0.2)
    assert not refused.allowed and refused.retry_after == 60
    assert ratelimits._local_hit("k", limit=3, window_seconds=60, now=t0 + 60).allowed


def test_a_requests_windows_take_one_call_and_a_refusal_counts_in_none(monkeypatch, redis_client):
    """The shopper's and the address's windows are checked in one Redis call; a request the
    address window refuses is not logged in the shopper's either."""
    prefix = django_settings.REDIS_KEY_PREFIX
    user = ratelimits.Window(prefix + "test:user", limit=5, seconds=60)
    address = ratelimits.Window(prefix + "test:ip", limit=1, seconds=60)
    calls = []
    script = ratelimits.SLIDING_WINDOWS

    def counted(**kwargs):
        calls.append(kwargs["keys"])
        return script(**kwargs)

    monkeypatch.setattr(ratelimits, "SLIDING_WINDOWS", counted)
    t0 = 1_800_000_000 * SECOND
    first = ratelimits.sliding_windows_hit([user, address], now_us=t0)
    assert first == ratelimits.WindowsHit(-1, ratelimits.Hit(True))
    second = ratelimits.sliding_windows_hit([user, address], now_us=t0 + 1)
    assert second.index == 1 and second.hit == ratelimits.Hit(False, 60)
    assert calls == [[user.key, address.key]] * 2
    assert redis_client.zcard(user.key) == 1  # only the request let through
    assert ratelimits._local_hits([user, address], now=1.0).index == -1
    assert ratelimits._local_hits([user, address], now=2.0).index == 1
    assert len(ratelimits._local_logs[user.key]) == 1


def test_answers_given_by_the_protection_layer_carry_the_security_headers(
    client, make_sale, shopper, settings
):
    """A 429 is answered before Django's own middleware runs; it still carries what every
    answer does (nosniff, X-Frame-Options, Referrer-Policy, and the CSP of the outer layer)."""
    _limits(settings, challenge={"user": "1/h", "ip": "1000/h"})
    sale = make_sale()
    url = f"/api/v1/flash_sales/{sale.id}/challenge"
    allowed = client.get(url, **bearer(shopper))
    limited = client.get(url, **bearer(shopper))
    assert (allowed.status_code, limited.status_code) == (200, 429)
    for header in ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"):
        assert limited.get(header) == allowed.get(header) is not None, header
    assert limited["Content-Security-Policy"]
