"""No card number, token or password in any log line or span: a sign-in, a purchase and a
payment (its charge task run in this process) with every logger at DEBUG, DEBUG on (so Django
would log SQL), JSON log lines and traces captured; then grep them all."""

from __future__ import annotations

import io
import json
import logging

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from apps.core import tracing
from apps.core.request_context import RequestIdFilter
from conftest import admitted
from flashsale.celery import app

from .test_services import OK

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "correct-horse-battery-staple-42"


@pytest.fixture
def captured_logs():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        logging.getLogger().handlers[0].formatter
        if logging.getLogger().handlers
        else logging.Formatter("%(message)s")
    )
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    was_enabled = tracing.state.enabled
    tracing.tracing_setup(exporter=exporter)
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield exporter
    app.conf.task_always_eager = eager
    tracing.state.enabled = was_enabled


def test_no_secret_reaches_a_log_or_a_span(
    client, settings, captured_logs, spans, pay_settings, make_sale, django_user_model
):
    settings.DEBUG = True
    shopper = django_user_model.objects.create_user(username="secretive", password=PASSWORD)
    token_response = client.post(
        "/api/v1/auth/token",
        {"username": "secretive", "password": PASSWORD},
        content_type="application/json",
    )
    assert token_response.status_code in (200, 201), token_response.content
    token = token_response.json()["access_token"]
    client.post("/accounts/login/", {"username": "secretive", "password": PASSWORD + "x"})
    sale = make_sale(inventory=2)
    purchase_auth = admitted(shopper, sale)
    reserved = client.post(
        f"/api/v1/flash_sales/{sale.id}/purchase",
        data=json.dumps({"quantity": 1}),
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY="secret-1",
        **purchase_auth,
    )
    assert reserved.status_code == 201
    paid = client.post(
        f"/api/v1/orders/{reserved.json()['order_id']}/pay",
        {"card_number": OK, "exp_month": "12", "exp_year": "2040", "cvc": "123"},
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY="secret-pay-1",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert paid.status_code in (200, 202), paid.content

    logs = captured_logs.getvalue()
    span_text = json.dumps(
        [
            {"name": s.name, "attributes": dict(s.attributes or {}), "events": len(s.events)}
            for s in spans.get_finished_spans()
        ]
    )
    assert logs, "something was logged"
    assert spans.get_finished_spans(), "something was traced"
    secrets = {
        "card number": OK,
        "password": PASSWORD,
        "shopper token": token,
        "admission token": purchase_auth["HTTP_AUTHORIZATION"].split(" ", 1)[1],
    }
    for what, secret in secrets.items():
        assert secret not in logs, f"{what} in a log line"
        assert secret not in span_text, f"{what} in a span"
