"""Proof of work, bot signals and the block list, through the real endpoints."""

from __future__ import annotations

import time

import pytest
from django.core import signing
from django.test import RequestFactory

from apps.protection import blocklist
from apps.protection.flags import flag_record
from apps.protection.models import FlaggedAddress, FlaggedShopper
from apps.protection.pow import challenge_issue, leading_zero_bits, pow_digest, pow_solve
from apps.protection.scoring import DEVICE_COOKIE, SEEN_COOKIE, cookie_sign
from apps.protection.services import join_screen
from conftest import bearer

from .conftest import purchase_auth

pytestmark = pytest.mark.django_db

BROWSER = {
    "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36",
    "HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.9",
    "HTTP_SEC_FETCH_SITE": "same-origin",
    "HTTP_SEC_FETCH_MODE": "cors",
}


def browser_cookies(client, *, loaded_seconds_ago: float = 5.0, device: str = "d1") -> None:
    client.cookies[SEEN_COOKIE] = cookie_sign(f"{time.time() - loaded_seconds_ago:.3f}")
    client.cookies[DEVICE_COOKIE] = cookie_sign(device)


def challenge(client, sale) -> dict:
    response = client.get(f"/api/v1/flash_sales/{sale.id}/challenge")
    assert response.status_code == 200, response.content
    return response.json()


def screen(sale, user, body: dict, **headers):
    request = RequestFactory().post("/", **{**BROWSER, **headers})
    request.COOKIES[SEEN_COOKIE] = cookie_sign(f"{time.time() - 5:.3f}")
    request.COOKIES[DEVICE_COOKIE] = cookie_sign(f"dev-{user.id}")
    return join_screen(request=request, sale=sale, user_id=user.id, body=body)


def test_challenge_states_the_sales_difficulty(client, make_sale):
    sale = make_sale(pow_difficulty=9)
    body = challenge(client, sale)
    assert body["difficulty"] == 9
    assert body["expires_in"] > 0
    nonce = pow_solve(body["challenge"], 9)
    assert leading_zero_bits(pow_digest(body["challenge"], nonce)) >= 9


def test_pow_answer_accepted_once_then_replay_refused(client, make_sale, shopper):
    sale = make_sale(pow_difficulty=8)
    issued = challenge(client, sale)
    answer = {"challenge": issued["challenge"], "nonce": pow_solve(issued["challenge"], 8)}
    verdict = screen(sale, shopper, answer)
    assert verdict.allowed and not verdict.back_of_queue
    with pytest.raises(Exception) as refused:
        screen(sale, shopper, answer)
    assert refused.value.status == 403 and refused.value.code == "pow_replayed"


def test_pow_wrong_answer_refused(client, make_sale, shopper):
    sale = make_sale(pow_difficulty=12)
    issued = challenge(client, sale)
    nonce = 0
    while leading_zero_bits(pow_digest(issued["challenge"], str(nonce))) >= 12:
        nonce += 1
    with pytest.raises(Exception) as refused:
        screen(sale, shopper, {"challenge": issued["challenge"], "nonce": str(nonce)})
    assert refused.value.code == "pow_wrong"


def test_pow_too_easy_challenge_refused(make_sale, shopper):
    """A challenge for fewer bits than the sale asks now (forged or from before the admin
    raised it) is refused even with a correct answer."""
    sale = make_sale(pow_difficulty=10)
    easy = challenge_issue(sale_id=sale.id, difficulty=2)
    with pytest.raises(Exception) as refused:
        screen(sale, shopper, {"challenge": easy, "nonce": pow_solve(easy, 2)})
    assert refused.value.code == "pow_too_easy"


class _SignedADayAgo(signing.TimestampSigner):
    def timestamp(self) -> str:
        return signing.b62_encode(int(time.time()) - 86_400)


def test_pow_forged_missing_expired_and_foreign_refused(make_sale, shopper):
    sale = make_sale(pow_difficulty=4)
    other = make_sale(pow_difficulty=4)
    with pytest.raises(Exception) as refused:
        screen(sale, shopper, {})
    assert refused.value.code == "pow_required"
    forged = f"{sale.id}.0.x:1:forged"
    with pytest.raises(Exception) as refused:
        screen(sale, shopper, {"challenge": forged, "nonce": "1"})
    assert refused.value.code == "pow_invalid"
    foreign = challenge_issue(sale_id=other.id, difficulty=4)
    with pytest.raises(Exception) as refused:
        screen(sale, shopper, {"challenge": foreign, "nonce": pow_solve(foreign, 4)})
    assert refused.value.code == "pow_invalid"
    # Signed as the clock read a day ago: past the challenge's lifetime, without waiting.
    old = _SignedADayAgo(salt="protection.pow").sign(f"{sale.id}.4.abc")
    with pytest.raises(Exception) as refused:
        screen(sale, shopper, {"challenge": old, "nonce": pow_solve(old, 4)})
    assert refused.value.code == "pow_expired"


def test_pow_off_at_difficulty_zero(make_sale, shopper):
    sale = make_sale(pow_difficulty=0)
    assert screen(sale, shopper, {}).allowed


def _join(client, sale, user, **headers):
    issued = challenge(client, sale)
    body = {"challenge": issued["challenge"], "nonce": pow_solve(issued["challenge"], 6)}
    return client.post(
        f"/api/v1/flash_sales/{sale.id}/waiting_room",
        body,
        content_type="application/json",
        **bearer(user),
        **headers,
    )


def test_scripted_bot_that_skips_the_page_is_scored_and_refused(client, make_sale, make_shopper):
    """A script calls the API directly (no page load, a library's User-Agent, no browser
    headers), solving the PoW like anyone: refused with its reasons, and a person's browser
    that loaded the page is let in."""
    sale = make_sale(pow_difficulty=6, bot_policy="refuse", bot_threshold=50)
    bot = make_shopper()
    response = _join(client, sale, bot, HTTP_USER_AGENT="python-httpx/0.28.1")
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["error"] == "bot_suspected"
    assert {"scripted_user_agent", "no_page_load", "no_accept_language"} <= set(body["reasons"])
    assert body["score"] >= 50

    person = make_shopper()
    from django.test import Client

    browser = Client()
    browser_cookies(browser)
    response = _join(browser, sale, person, **BROWSER)
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    ("agent", "scripted"),
    [
        ("curl/8.0", True),
        ("CURL/8.0", True),
        ("Python-urllib/3.11", True),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True),
        ("Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/120.0 Safari/537.36", True),
        (BROWSER["HTTP_USER_AGENT"], False),
        ("Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0", False),
    ],
)
def test_a_librarys_user_agent_is_a_signal_whatever_its_case(agent, scripted):
    from apps.protection.scoring import Score, header_signals

    score = Score()
    header_signals(RequestFactory().post("/", **{**BROWSER, "HTTP_USER_AGENT": agent}), score)
    assert ("scripted_user_agent" in score.reasons) is scripted


def test_page_load_sets_the_cookies_the_screen_reads(client, make_sale, shopper):
    sale = make_sale()
    # The shared, CDN-cacheable sale page carries no cookie at all...
    shared = client.get(f"/sales/{sale.id}/")
    assert shared.status_code == 200 and "public" in shared["Cache-Control"]
    assert SEEN_COOKIE not in shared.cookies and DEVICE_COOKIE not in shared.cookies
    # ...the private /me call every page makes on load sets them, and so does the queue page.
    me = client.get("/me")
    assert SEEN_COOKIE in me.cookies and DEVICE_COOKIE in me.cookies
    client.cookies.clear()
    client.force_login(shopper)
    queue = client.get(f"/sales/{sale.id}/queue/")
    assert queue.status_code == 200
    assert SEEN_COOKIE in queue.cookies and DEVICE_COOKIE in queue.cookies


def test_back_of_queue_policy_lets_a_suspect_in_at_the_back(make_sale, shopper):
    sale = make_sale(pow_difficulty=0, bot_policy="back_of_queue", bot_threshold=50)
    request = RequestFactory().post("/", HTTP_USER_AGENT="curl/8.0")
    verdict = join_screen(request=request, sale=sale, user_id=shopper.id, body={})
    assert verdict.back_of_queue and verdict.score >= 50
    assert "no_page_load" in verdict.reasons


def test_honeypot_refuses_even_with_policy_off(make_sale, shopper):
    sale = make_sale(pow_difficulty=0, bot_policy="off")
    with pytest.raises(Exception) as refused:
        screen(sale, shopper, {"website": "http://spam.example"})
    assert refused.value.code == "bot_suspected"


def test_many_accounts_from_one_device_are_flagged(make_sale, make_shopper, settings):
    sale = make_sale(pow_difficulty=0, bot_policy="back_of_queue", bot_threshold=40)
    verdicts = []
    for _ in range(4):
        user = make_shopper()
        request = RequestFactory().post("/", **BROWSER)
        request.COOKIES[SEEN_COOKIE] = cookie_sign(f"{time.time() - 5:.3f}")
        request.COOKIES[DEVICE_COOKIE] = cookie_sign("one-phone")
        verdicts.append(join_screen(request=request, sale=sale, user_id=user.id, body={}))
    assert not verdicts[0].back_of_queue
    assert verdicts[-1].back_of_queue
    assert "many_accounts_per_device" in verdicts[-1].reasons


def _joins_at(sale, make_shopper, monkeypatch, times: list[float], ip: str):
    """Join from one address at the given clock readings; the last join's verdict."""
    from apps.protection import services

    verdict = None
    for at in times:
        monkeypatch.setattr(services.time, "time", lambda at=at: at)
        request = RequestFactory().post("/", REMOTE_ADDR=ip, **BROWSER)
        request.COOKIES[SEEN_COOKIE] = cookie_sign(f"{at - 5:.3f}")
        user = make_shopper()
        request.COOKIES[DEVICE_COOKIE] = cookie_sign(f"dev-{user.id}")
        verdict = join_screen(request=request, sale=sale, user_id=user.id, body={})
    return verdict


def test_regular_timing_is_a_signal(make_sale, make_shopper, monkeypatch, settings):
    """Six or more joins from one address whose gaps vary by under 5 %: a loop, not people."""
    settings.BOT_ACCOUNTS_PER_IP = 100
    sale = make_sale(pow_difficulty=0, bot_policy="off", bot_threshold=50)
    now = time.time()
    loop = _joins_at(sale, make_shopper, monkeypatch, [now + 2.0 * i for i in range(8)], "10.0.0.1")
    assert "regular_timing" in loop.reasons
    people = [now + d for d in (0, 1.3, 4.0, 4.4, 9.9, 11.0, 18.2)]
    irregular = _joins_at(sale, make_shopper, monkeypatch, people, "10.0.0.2")
    assert "regular_timing" not in irregular.reasons
    few = _joins_at(sale, make_shopper, monkeypatch, people[:2], "10.0.0.3")
    assert "regular_timing" not in few.reasons


def test_flags_are_recorded_with_reasons_and_twice_is_safe(make_sale, shopper):
    sale = make_sale()
    for _ in range(2):
        flag_record(
            user_id=shopper.id,
            ip="203.0.113.7",
            sale_id=str(sale.id),
            score=70,
            reasons=["no_page_load", "scripted_user_agent"],
        )
    flag = FlaggedShopper.objects.get(user=shopper)
    assert flag.times_flagged == 2 and flag.score == 70 and flag.last_ip == "203.0.113.7"
    assert flag.reasons == ["no_page_load", "scripted_user_agent"]
    assert FlaggedAddress.objects.get(ip="203.0.113.7").times_flagged == 2


def test_blocked_shopper_gets_403_on_join_and_purchase_until_cleared(
    client, make_sale, shopper, django_capture_on_commit_callbacks
):
    sale = make_sale(pow_difficulty=0, inventory=5)
    with django_capture_on_commit_callbacks(execute=True):
        blocklist.shoppers_block(user_ids=[shopper.id])
    with pytest.raises(Exception) as refused:
        screen(sale, shopper, {})
    assert refused.value.status == 403 and refused.value.code == "blocked"
    response = client.post(
        f"/api/v1/flash_sales/{sale.id}/purchase",
        {},
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY="k1",
        **purchase_auth(shopper, sale),
    )
    assert response.status_code == 403 and response.json()["error"] == "blocked"
    assert "blocked" in response.json()["detail"]
    with django_capture_on_commit_callbacks(execute=True):
        blocklist.shoppers_clear(user_ids=[shopper.id])
    assert screen(sale, shopper, {}).allowed


def test_blocked_address_and_list_survives_redis_losing_it(
    make_sale, shopper, redis_client, django_capture_on_commit_callbacks
):
    sale = make_sale(pow_difficulty=0)
    with django_capture_on_commit_callbacks(execute=True):
        blocklist.addresses_block(ips=["198.51.100.9"])
    redis_client.delete(blocklist.USERS, blocklist.IPS, blocklist.LOADED)
    with pytest.raises(Exception) as refused:
        screen(sale, shopper, {}, REMOTE_ADDR="198.51.100.9")
    assert refused.value.code == "blocked"


def test_admin_block_and_clear_actions(admin_client, make_shopper, redis_client):
    user = make_shopper()
    flag_record(user_id=user.id, ip="192.0.2.1", sale_id=None, score=80, reasons=["honeypot"])
    flag = FlaggedShopper.objects.get(user=user)
    url = "/admin/protection/flaggedshopper/"
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"action": "block", "_selected_action": [flag.pk]})
    assert response.status_code == 302
    flag.refresh_from_db()
    assert flag.blocked
    response = admin_client.post(url, {"action": "clear", "_selected_action": [flag.pk]})
    flag.refresh_from_db()
    assert not flag.blocked and flag.score == 0


def test_a_suspects_flag_marker_rides_the_scoring_round_trip(
    make_sale, make_shopper, monkeypatch, settings, redis_round_trips
):
    """The whole screen is one Redis round trip, a suspect's (a script: no page load, no
    browser headers) flag included: queued in Redis once a minute per shopper and sale, not
    once a join, and recorded in PostgreSQL by the periodic task, with no broker call on the
    join."""
    from apps.protection.tasks import record_flag, record_flags

    settings.BLOCKLIST_MEMORY_SECONDS = 60  # as in production: the block list from memory
    published = []
    monkeypatch.setattr(record_flag, "apply_async", lambda *a, **k: published.append(a))
    sale = make_sale(pow_difficulty=0, bot_policy="back_of_queue", bot_threshold=50)
    warm = make_shopper()
    for _ in range(2):  # the block list restored, then its copy in memory
        join_screen(request=RequestFactory().post("/"), sale=sale, user_id=warm.id, body={})
    suspect = make_shopper()
    request = RequestFactory().post("/", HTTP_USER_AGENT="curl/8.0")
    redis_round_trips.clear()
    verdict = join_screen(request=request, sale=sale, user_id=suspect.id, body={})
    assert verdict.back_of_queue
    assert len(redis_round_trips) == 1
    join_screen(request=request, sale=sale, user_id=suspect.id, body={})
    monkeypatch.undo()
    assert published == []
    assert not FlaggedShopper.objects.exists()  # nothing written on the join's path
    record_flags()
    flags = {flag.user_id: flag for flag in FlaggedShopper.objects.all()}
    assert set(flags) == {warm.id, suspect.id}
    assert flags[suspect.id].times_flagged == 1  # twice in a minute: recorded once
    assert "no_page_load" in flags[suspect.id].reasons and flags[suspect.id].score >= 50
    record_flags()  # drained: nothing twice
    assert FlaggedShopper.objects.get(user=suspect).times_flagged == 1


def test_a_join_is_screened_and_placed_in_one_round_trip(
    client, make_sale, make_shopper, settings, redis_round_trips
):
    """The screen's Redis part (account signals, the challenge's one use, the verdict) runs in
    the join's own script: one round trip for a join; a refusal there leaves no place."""
    settings.RATELIMIT_ENABLE = False  # the limits' own round trip is the middleware's
    settings.BLOCKLIST_MEMORY_SECONDS = 60  # both as in production: from process memory
    settings.SALE_SNAPSHOT_SECONDS = 60
    sale = make_sale(pow_difficulty=6, bot_policy="back_of_queue", bot_threshold=50)
    assert _join(client, sale, make_shopper(), **BROWSER).status_code == 200  # warms memories
    shopper, other = make_shopper(), make_shopper()
    issued = challenge(client, sale)
    answer = {"challenge": issued["challenge"], "nonce": pow_solve(issued["challenge"], 6)}
    redis_round_trips.clear()
    joined = client.post(
        f"/api/v1/flash_sales/{sale.id}/waiting_room",
        answer,
        content_type="application/json",
        **bearer(shopper),
        **BROWSER,
    )
    trips = len(redis_round_trips)
    replayed = client.post(
        f"/api/v1/flash_sales/{sale.id}/waiting_room",
        answer,
        content_type="application/json",
        **bearer(other),
        **BROWSER,
    )
    assert joined.status_code == 200, joined.content
    assert joined.json()["status"] == "waiting" and trips == 1
    assert replayed.status_code == 403 and replayed.json()["error"] == "pow_replayed"
    position = client.get(f"/api/v1/flash_sales/{sale.id}/waiting_room/position", **bearer(other))
    assert position.status_code == 404 and position.json()["error"] == "not_in_queue"


def test_a_honeypot_join_is_refused_and_its_flag_recorded(client, make_sale, make_shopper):
    from apps.protection.tasks import record_flags

    sale = make_sale(pow_difficulty=6, bot_policy="off")
    bot = make_shopper()
    response = client.post(
        f"/api/v1/flash_sales/{sale.id}/waiting_room",
        {"website": "http://spam.example"},  # no proof of work either: the honeypot decides
        content_type="application/json",
        **bearer(bot),
    )
    assert response.status_code == 403, response.content
    assert response.json()["error"] == "bot_suspected"
    assert response.json()["reasons"] == ["honeypot"]
    position = client.get(f"/api/v1/flash_sales/{sale.id}/waiting_room/position", **bearer(bot))
    assert position.status_code == 404
    record_flags()
    flag = FlaggedShopper.objects.get(user=bot)
    assert flag.score == 100 and "honeypot" in flag.reasons


def test_a_malformed_queued_flag_is_dropped_not_retried_forever(make_sale, shopper, redis_client):
    from apps.protection.flags import sale_flags_record
    from apps.protection.scoring import flags_waiting_key

    sale = make_sale()
    good = (
        f'{{"user_id": {shopper.id}, "ip": "192.0.2.4", "sale_id": "{sale.id}", '
        '"score": 60, "reasons": {}}'
    )
    redis_client.rpush(flags_waiting_key(sale.id), "not json", good)
    assert sale_flags_record(sale_id=sale.id) == 2
    assert sale_flags_record(sale_id=sale.id) == 0
    flag = FlaggedShopper.objects.get(user=shopper)
    assert flag.score == 60 and flag.reasons == [] and flag.times_flagged == 1
