"""Rate limits, load shedding, security headers, health endpoints, the SECRET_KEY guard."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.http import HttpResponse
from django.test import Client, RequestFactory

from apps.protection.middleware import ProtectionMiddleware
from conftest import bearer

from .conftest import purchase_auth

pytestmark = pytest.mark.django_db

ROOT = Path(django_settings.BASE_DIR)


def _limits(settings, **overrides):
    limits = {group: dict(rule) for group, rule in django_settings.RATE_LIMITS.items()}
    for group, rates in overrides.items():
        limits[group].update(rates)
    settings.RATE_LIMITS = limits


def test_over_the_limit_gets_429_with_retry_after_and_json(client, make_sale, shopper, settings):
    _limits(settings, challenge={"user": "3/m", "ip": "100/m"})
    sale = make_sale()
    url = f"/api/v1/flash_sales/{sale.id}/challenge"
    statuses = [client.get(url, **bearer(shopper)).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    response = client.get(url, **bearer(shopper))
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    body = response.json()
    assert body["error"] == "rate_limited" and "user limit" in body["detail"]
    # Another shopper from the same address still has their own budget.
    other = django_settings.AUTH_USER_MODEL and shopper.__class__.objects.create_user(
        "o" + uuid.uuid4().hex[:8]
    )
    assert client.get(url, **bearer(other)).status_code == 200


def test_per_ip_limit_applies_without_a_token(client, settings):
    _limits(settings, token={"ip": "2/m"})
    statuses = [
        client.post("/api/v1/auth/token", {}, content_type="application/json").status_code
        for _ in range(4)
    ]
    assert statuses[:2] != [429, 429] and statuses[2:] == [429, 429]


def test_position_polls_cannot_starve_purchases(client, make_sale, shopper, settings):
    _limits(settings, position={"user": "2/m"}, purchase={"user": "5/m"})
    sale = make_sale(inventory=3)
    poll = f"/api/v1/flash_sales/{sale.id}/waiting_room/position"
    polls = [client.get(poll, **bearer(shopper)).status_code for _ in range(4)]
    assert polls[-1] == 429
    response = client.post(
        f"/api/v1/flash_sales/{sale.id}/purchase",
        {},
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY="k",
        **purchase_auth(shopper, sale),
    )
    assert response.status_code == 201, response.content


def test_ratelimit_enable_off_turns_limits_off(client, make_sale, settings):
    _limits(settings, challenge={"ip": "1/m"})
    settings.RATELIMIT_ENABLE = False
    sale = make_sale()
    url = f"/api/v1/flash_sales/{sale.id}/challenge"
    assert {client.get(url).status_code for _ in range(4)} == {200}


def test_limits_still_hold_per_process_when_the_cache_is_down(client, make_sale, settings):
    """Redis (the cache) unreachable: no 500; each process limits on its own."""
    sale = make_sale()
    _limits(settings, challenge={"ip": "2/m"})
    caches = {k: dict(v) for k, v in django_settings.CACHES.items()}
    caches["default"]["LOCATION"] = "redis://127.0.0.1:1/0"
    settings.CACHES = caches
    url = f"/api/v1/flash_sales/{sale.id}/challenge"
    statuses = [client.get(url, REMOTE_ADDR="192.0.2.55").status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]


def test_load_shedding_answers_503_at_once_past_the_in_flight_cap(settings, make_sale):
    """Past PURCHASE_INFLIGHT_CAP purchases in flight in one process, the next ones get 503
    with Retry-After at once instead of queueing."""
    settings.PURCHASE_INFLIGHT_CAP = 2
    settings.RATELIMIT_ENABLE = False
    release = threading.Event()
    entered = threading.Semaphore(0)

    def slow_view(request):
        entered.release()
        release.wait(5)
        return HttpResponse(status=201)

    middleware = ProtectionMiddleware(slow_view)
    factory = RequestFactory()
    path = f"/api/v1/flash_sales/{uuid.uuid4()}/purchase"
    results: list[tuple[int, float]] = []

    def call():
        started = time.perf_counter()
        response = middleware(factory.post(path))
        results.append((response.status_code, time.perf_counter() - started, response))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for _ in threads:  # both purchases are in flight
        assert entered.acquire(timeout=5)
    for _ in range(3):
        call()
    shed = [r for r in results if r[0] == 503]
    assert len(shed) == 3
    assert all(seconds < 0.2 for _, seconds, _ in shed)
    assert shed[0][2]["Retry-After"] == "1"
    release.set()
    for t in threads:
        t.join()
    assert sorted(r[0] for r in results) == [201, 201, 503, 503, 503]
    assert middleware(factory.post(path)).status_code == 201


def test_security_headers_and_csp(client, settings):
    response = client.get("/healthz")
    csp = response["Content-Security-Policy"]
    assert (
        "script-src 'self'" in csp
        and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    )
    assert settings.WS_PUBLIC_URL.rstrip("/") in csp.split("connect-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "Strict-Transport-Security" not in response
    settings.SECURE_HSTS_SECONDS = 3600
    secure = Client().get("/healthz", secure=True)  # a new handler reads the setting
    assert secure["Strict-Transport-Security"].startswith("max-age=3600")


def test_pages_scripts_pass_the_csp(client, make_sale, shopper):
    """Every script the pages load is a file of our own origin: no inline script, no CDN."""
    import re

    sale = make_sale()
    client.force_login(shopper)
    for url in ("/", f"/sales/{sale.id}/", f"/sales/{sale.id}/queue/", "/accounts/login/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "script-src 'self';" in response["Content-Security-Policy"]
        for tag in re.findall(r"<script\b[^>]*>", response.content.decode()):
            assert "src=" in tag, f"{url}: an inline script would be blocked by the CSP: {tag}"
            src = re.search(r'src="([^"]+)"', tag).group(1)
            assert src.startswith("/"), f"{url}: {src}"
        assert not re.search(r"\son[a-z]+=", response.content.decode()), f"{url}: inline handler"


def test_admin_needs_staff(client, shopper):
    assert client.get("/admin/").status_code == 302
    client.force_login(shopper)
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_forms_carry_csrf(settings):
    assert "django.middleware.csrf.CsrfViewMiddleware" in settings.MIDDLEWARE
    csrf_client = Client(enforce_csrf_checks=True)
    response = csrf_client.post("/accounts/login/", {"username": "x", "password": "y"})
    assert response.status_code == 403


def test_healthz_and_readyz_report_each_dependency(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True
    assert set(body["checks"]) == {"postgres", "redis", "broker"}
    assert all(check["ok"] for check in body["checks"].values()), body


def test_readyz_reports_a_lost_redis_through_a_cut_proxy(client, settings, tcp_proxy):
    from apps.core.memory import memories_reset
    from apps.core.redis import get_redis

    proxy = tcp_proxy("127.0.0.1", 6379)
    settings.REDIS_URL = f"redis://127.0.0.1:{proxy.port}/13"
    get_redis.cache_clear()
    memories_reset()
    try:
        proxy.cut()
        body = client.get("/readyz").json()
        assert body["checks"]["redis"]["ok"] is False and body["status"] == "degraded"
        assert body["ready"] is True
        settings.READINESS_REQUIRED = ["redis"]
        memories_reset()
        assert client.get("/readyz").status_code == 503
        proxy.restore()
        memories_reset()
        assert client.get("/readyz").status_code == 200
    finally:
        memories_reset()
        get_redis.cache_clear()


def _settings_import(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import flashsale.settings.base"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_refuses_to_start_without_debug_and_with_a_weak_secret_key():
    weak = _settings_import({"DEBUG": "0", "SECRET_KEY": "short"})
    assert weak.returncode != 0 and "SECRET_KEY" in weak.stderr
    default = _settings_import({"DEBUG": "0", "SECRET_KEY": "dev-insecure-secret-key-change-me"})
    assert default.returncode != 0
    placeholder = _settings_import(
        {"DEBUG": "0", "SECRET_KEY": "change-me-to-a-long-random-string-of-50-or-more-characters"}
    )
    assert placeholder.returncode != 0
    strong = _settings_import({"DEBUG": "0", "SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex})
    assert strong.returncode == 0, strong.stderr
