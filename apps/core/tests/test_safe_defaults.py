"""Safe by default (issue 10, item 1): a fresh install runs with DEBUG off, secure cookies and
HSTS, friendly error pages that leak nothing, and refuses to start on a weak signing key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
STRONG_SECRET = "Zx8-kP2vQ9mL4tR7wB1nC6yH3jF0dS5gA-eU8iO2pK7lM4qW9rT1"
STRONG_JWT = "k1:Jd8Hs2Lq9Xv4Nb7Wm1Rc6Tz3Yp0Kf5Ga-"

PROBE = r"""
import json, django
django.setup()
from django.conf import settings
from django.test import Client

client = Client(raise_request_exception=False)
out = {
    "DEBUG": settings.DEBUG,
    "SESSION_COOKIE_SECURE": settings.SESSION_COOKIE_SECURE,
    "CSRF_COOKIE_SECURE": settings.CSRF_COOKIE_SECURE,
    "SECURE_HSTS_SECONDS": settings.SECURE_HSTS_SECONDS,
}
for name, path in [("page_404", "/no-such-page"), ("api_404", "/api/v1/no-such-thing"),
                   ("page_500", "/crash"), ("api_500", "/api/v1/crash")]:
    r = client.get(path)
    out[name] = {"status": r.status_code, "type": r["Content-Type"],
                 "body": r.content.decode(errors="replace")}
r = client.get("/accounts/login/", secure=True)
out["login"] = {"hsts": r.get("Strict-Transport-Security", ""),
                "csrf_cookie_secure": bool(r.cookies["csrftoken"]["secure"])}
print("PROBE" + json.dumps(out))
"""


def _fresh_install_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DEMO_MODE")}
    env.update(
        DJANGO_SETTINGS_MODULE="apps.core.tests.default_install_settings",
        SECRET_KEY=STRONG_SECRET,
        JWT_KEYS=STRONG_JWT,
        # A secret in a setting, to prove an error page never shows it.
        CELERY_BROKER_URL="amqp://guest:hunter2-broker-password@127.0.0.1:5672//",
        LOG_LEVEL="CRITICAL",
    )
    env.update(extra)
    return env


def _probe(**extra: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=_fresh_install_env(**extra),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("PROBE"))
    return json.loads(line[len("PROBE") :])


def test_a_fresh_install_runs_with_debug_off_secure_cookies_and_friendly_errors():
    out = _probe()
    assert out["DEBUG"] is False
    # HSTS and Secure cookies are on without anyone asking.
    assert out["SESSION_COOKIE_SECURE"] and out["CSRF_COOKIE_SECURE"]
    assert out["SECURE_HSTS_SECONDS"] >= 31536000
    assert "max-age=31536000" in out["login"]["hsts"]
    assert out["login"]["csrf_cookie_secure"] is True

    page = out["page_404"]
    assert page["status"] == 404 and page["type"].startswith("text/html")
    assert "We could not find that page" in page["body"]
    # Django's debug 404 lists every URL pattern; the friendly page lists none.
    assert "URLconf" not in page["body"] and "api/v1/" not in page["body"]

    api = out["api_404"]
    assert api["status"] == 404 and api["type"] == "application/json"
    assert json.loads(api["body"])["error"] == "not_found"

    for name in ("page_500", "api_500"):
        crash = out[name]
        assert crash["status"] == 500
        # No traceback, no settings, no credentials.
        assert "hunter2" not in crash["body"] and "Traceback" not in crash["body"]
        assert "CELERY_BROKER_URL" not in crash["body"] and len(crash["body"]) < 5000
    assert "Something went wrong on our side" in out["page_500"]["body"]
    assert json.loads(out["api_500"]["body"])["error"] == "server_error"


def test_demo_mode_serves_plain_http_without_secure_cookies_and_keeps_debug_off():
    out = _probe(DEMO_MODE="1")
    assert out["DEBUG"] is False
    assert not out["SESSION_COOKIE_SECURE"] and out["SECURE_HSTS_SECONDS"] == 0


def _start(**env: str) -> subprocess.CompletedProcess:
    """``manage.py check``: loads the settings and every app, as any process does at start."""
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**_fresh_install_env(), "DJANGO_SETTINGS_MODULE": "flashsale.settings.base", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "env, complaint",
    [
        ({"SECRET_KEY": "dev-insecure-secret-key-change-me"}, "SECRET_KEY is weak"),
        ({"SECRET_KEY": "secret"}, "SECRET_KEY is weak"),
        ({"SECRET_KEY": "a" * 64}, "distinct characters"),
        (
            {"SECRET_KEY": "<your-secret-key-goes-here-with-fifty-or-more-characters>"},
            "placeholder",
        ),
        ({"JWT_KEYS": "k0:secret"}, "JWT_KEYS key 'k0' is weak"),
        ({"JWT_KEYS": f"{STRONG_JWT},k0:short-key-Xy7"}, "shorter than 32"),
        ({"JWT_KEYS": "just-a-secret-without-a-key-id"}, "kid:secret"),
    ],
)
def test_debug_off_refuses_to_start_on_a_weak_key_and_prints_the_fix(env, complaint):
    started = _start(**env)
    assert started.returncode != 0
    assert complaint in started.stderr, started.stderr[-2000:]
    assert "secrets.token_urlsafe" in started.stderr


def test_debug_off_starts_with_strong_keys():
    started = _start()
    assert started.returncode == 0, started.stderr[-2000:]
    # Without JWT_KEYS, tokens are signed with the (strong) SECRET_KEY.
    assert _start(JWT_KEYS="").returncode == 0
