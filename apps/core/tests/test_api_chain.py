"""The API's lean middleware chain (apps/core/handlers.py), through the WSGI application the
servers run: /api/ answers without sessions, cookies or CSRF, and keeps the security
headers, the request id, the protection and the JSON errors; pages keep the full chain."""

from __future__ import annotations

import io
import json

import pytest
from django.conf import settings
from django.core import signals
from django.db import close_old_connections

from apps.core.handlers import PathDispatch
from conftest import admitted, bearer

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def application():
    return PathDispatch()


def call(application, method, path, body=b"", headers=None):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "testserver",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
    }
    environ.update(headers or {})
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"] = int(status.split()[0])
        answer["headers"] = response_headers

    # As Django's test client does: keep the test's connection (and its transaction) open.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        chunks = application(environ, start_response)
        content = b"".join(chunks)
        chunks.close()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    names = {}
    for name, value in answer["headers"]:
        names.setdefault(name.lower(), []).append(value)
    return answer["status"], names, content


def test_the_api_chain_skips_what_only_pages_use():
    assert [
        m
        for m in settings.MIDDLEWARE
        if m.rsplit(".", 1)[-1]
        not in {
            "WhiteNoiseMiddleware",
            "SessionMiddleware",
            "CsrfViewMiddleware",
            "AuthenticationMiddleware",
            "MessageMiddleware",
        }
    ] == settings.API_MIDDLEWARE


def test_an_api_answer_keeps_the_security_headers_and_sets_no_cookie(application, make_sale):
    sale = make_sale(inventory=3)
    status, headers, content = call(application, "GET", f"/api/v1/flash_sales/{sale.id}")
    assert status == 200, content
    assert json.loads(content)["id"] == str(sale.id)
    assert "default-src 'self'" in headers["content-security-policy"][0]
    assert headers["x-frame-options"] == ["DENY"]
    assert headers["x-content-type-options"] == ["nosniff"]
    assert headers["x-request-id"][0]
    assert "set-cookie" not in headers
    assert "Cookie" not in ",".join(headers.get("vary", []))


def test_a_purchase_and_the_waiting_room_work_on_the_api_chain(application, make_sale, shopper):
    sale = make_sale(inventory=3)
    status, _, content = call(
        application,
        "POST",
        f"/api/v1/flash_sales/{sale.id}/purchase",
        b'{"quantity": 1}',
        {**admitted(shopper, sale), "HTTP_X_IDEMPOTENCY_KEY": "k1"},
    )
    assert status == 201, content  # no CSRF token and no session: none needed
    status, _, content = call(
        application, "GET", f"/api/v1/flash_sales/{sale.id}/order", headers=bearer(shopper)
    )
    assert status == 200 and json.loads(content)["units_held"] == 1, content
    status, _, content = call(application, "POST", f"/api/v1/flash_sales/{sale.id}/purchase")
    assert status == 401 and json.loads(content)["error"] == "not_authenticated"


def test_the_api_chain_rate_limits(application, settings, make_sale):
    settings.RATELIMIT_ENABLE = True
    settings.RATE_LIMITS = {"api": {"path": r"^/api/", "ip": "2/m"}}
    sale = make_sale(inventory=3)
    statuses = [call(application, "GET", f"/api/v1/flash_sales/{sale.id}")[0] for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_the_api_chain_keeps_the_slash_redirect_and_the_docs(application):
    status, headers, _ = call(application, "GET", "/api/v1/flash_sales")
    assert status == 301 and headers["location"] == ["/api/v1/flash_sales/"]
    status, headers, content = call(application, "GET", "/api/docs/")
    assert status == 200 and b"redoc" in content.lower()
    status, _, content = call(application, "GET", "/api/v1/nothing-here")
    assert status == 404 and json.loads(content)["error"]


def test_pages_keep_the_full_chain(application):
    status, headers, content = call(application, "GET", "/accounts/login/")
    assert status == 200
    assert any(c.strip().startswith("csrftoken=") for c in headers.get("set-cookie", [])), headers
