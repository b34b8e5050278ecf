"""Password checks are limited per username and per address, with a growing delay, and
bounded in how many hash at once: the HTML login, the admin's and the API token."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from apps.protection import logins

pytestmark = pytest.mark.django_db

SECOND = 1_000_000


def login(client, username, password, ip="198.51.100.7"):
    return client.post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def test_thirty_wrong_passwords_then_the_right_one(client, shopper, settings):
    """Before: 30 x 200 then 302. Now five free tries, then 429s (a page, Retry-After)
    without checking the password, and the right one waits its turn too."""
    # The first delay long enough that the 25 refused tries fit in it on a loaded box (with
    # 1 s, one of them came after the delay at load 12 and was rightly checked: a 200).
    settings.LOGIN_DELAY_BASE_SECONDS = 4.0
    statuses = [login(client, shopper.username, f"wrong-{i}").status_code for i in range(30)]
    assert statuses[:5] == [200] * 5
    assert statuses[5:] == [429] * 25
    right = login(client, shopper.username, "pw-for-tests")
    assert right.status_code == 429
    assert int(right["Retry-After"]) >= 1
    assert right["Content-Type"].startswith("text/html")
    assert b"Too many" in right.content
    assert "_auth_user_id" not in client.session
    # Once the delay has passed, the right password gets in (and forgets the record).
    deadline = time.monotonic() + 15
    while (response := login(client, shopper.username, "pw-for-tests")).status_code == 429:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(shopper.id)


def test_the_username_limit_holds_across_addresses(shopper):
    statuses = [
        login(Client(), shopper.username, "wrong", ip=f"203.0.113.{i}").status_code
        for i in range(8)
    ]
    assert statuses == [200] * 5 + [429] * 3


def test_the_address_limit_holds_across_usernames(settings, make_shopper):
    settings.LOGIN_FREE_ATTEMPTS_PER_IP = 4
    statuses = [login(Client(), f"nobody-{i}", "wrong").status_code for i in range(6)]
    assert statuses == [200] * 4 + [429] * 2
    # Another address is not affected.
    assert login(Client(), "nobody-x", "wrong", ip="192.0.2.99").status_code == 200


def test_the_delay_grows_with_each_attempt(settings):
    """Driven clock: after the free attempts, each waits twice as long as the one before,
    up to the longest delay."""
    settings.LOGIN_DELAY_MAX_SECONDS = 8
    t = 1_800_000_000 * SECOND
    for _ in range(settings.LOGIN_FREE_ATTEMPTS_PER_USERNAME):
        assert logins.login_attempt_begin(username="Eve", ip="", now_us=t) is None
    waits = []
    for _ in range(6):
        refused = logins.login_attempt_begin(username="eve", ip="", now_us=t)
        waits.append(refused.retry_after)
        t += refused.retry_after * SECOND
        assert logins.login_attempt_begin(username="eve", ip="", now_us=t) is None
    assert waits == [1, 2, 4, 8, 8, 8]


def test_the_api_token_endpoint_is_limited_too(client, shopper, settings):
    settings.RATELIMIT_ENABLE = False  # the per-address request limit is another layer
    url = "/api/v1/auth/token"
    body = {"username": shopper.username, "password": "wrong"}
    statuses = [client.post(url, body, content_type="application/json") for _ in range(7)]
    assert [r.status_code for r in statuses] == [401] * 5 + [429] * 2
    refused = statuses[-1]
    assert refused.json()["error"] == "too_many_login_attempts"
    assert int(refused["Retry-After"]) >= 1


def test_a_success_forgets_the_username_record(client, shopper):
    for _ in range(4):
        assert login(client, shopper.username, "wrong").status_code == 200
    assert login(client, shopper.username, "pw-for-tests").status_code == 302
    client.logout()
    assert [login(client, shopper.username, "wrong").status_code for _ in range(5)] == [200] * 5


def test_password_hashing_is_bounded_per_process(client, shopper, settings):
    """With every hashing slot taken, a login answers 503 with Retry-After within the short
    wait instead of holding a thread."""
    settings.LOGIN_HASH_CONCURRENCY = 1
    settings.LOGIN_HASH_WAIT_SECONDS = 0.05
    slots = logins._hash_slots()
    assert slots.acquire(timeout=1)
    try:
        busy = login(client, shopper.username, "pw-for-tests")
        api = client.post(
            "/api/v1/auth/token",
            {"username": shopper.username, "password": "pw-for-tests"},
            content_type="application/json",
        )
    finally:
        slots.release()
    assert busy.status_code == 503 and busy["Retry-After"] == "1"
    assert api.status_code == 503 and api.json()["error"] == "login_busy"
    assert login(client, shopper.username, "pw-for-tests").status_code == 302


def test_the_admin_login_is_limited(django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.com", "right-pw")
    admin = Client()
    statuses = [
        admin.post("/admin/login/", {"username": "root", "password": "wrong"}).status_code
        for _ in range(6)
    ]
    assert statuses == [200] * 5 + [429]
