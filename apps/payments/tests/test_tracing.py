"""One purchase and its payment as one trace: the request's span, its Lua calls and SQL, the
charge task it queued, and that task's call to the real gateway (the client sends the trace
context and the request id on with it). The task body runs eagerly here so its spans land in this
process's in-memory exporter; the worker process does the same with its own exporter."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from apps.core import tracing
from conftest import admitted, bearer
from flashsale.celery import app

from .test_services import OK

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    was_enabled = tracing.state.enabled
    tracing.tracing_setup(exporter=exporter, service_name="flashsale-test")
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield exporter
    app.conf.task_always_eager = eager
    tracing.state.enabled = was_enabled


def test_a_purchase_and_its_payment_are_one_trace(client, spans, pay_settings, make_sale, shopper):
    sale = make_sale(inventory=2)
    reserved = client.post(
        f"/api/v1/flash_sales/{sale.id}/purchase",
        data=json.dumps({"quantity": 1}),
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY="trace-1",
        HTTP_X_REQUEST_ID="trace-req-1",
        **admitted(shopper, sale),
    )
    assert reserved.status_code == 201, reserved.content
    purchase_spans = spans.get_finished_spans()
    server = [s for s in purchase_spans if s.kind.name == "SERVER"]
    assert [s.name for s in server] == ["POST api/v1/flash_sales/<str:sale_id>/purchase"]
    trace_id = server[0].context.trace_id
    assert server[0].attributes["http.response.status_code"] == 201
    assert server[0].attributes["flashsale.request_id"] == "trace-req-1"
    children = [s for s in purchase_spans if s.context.trace_id == trace_id and s is not server[0]]
    names = [s.name for s in children]
    assert any(n.startswith("redis.lua reserve") for n in names), names
    assert any(s.attributes.get("db.system") == "postgresql" for s in children), names

    spans.clear()
    order_id = reserved.json()["order_id"]
    paid = client.post(
        f"/api/v1/orders/{order_id}/pay",
        {"card_number": OK, "exp_month": "12", "exp_year": "2040", "cvc": "123"},
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY="pay-1",
        **bearer(shopper),
    )
    assert paid.status_code in (200, 202), paid.content
    pay_spans = spans.get_finished_spans()
    pay_server = next(s for s in pay_spans if s.kind.name == "SERVER")
    in_trace = [s for s in pay_spans if s.context.trace_id == pay_server.context.trace_id]
    task = [s for s in in_trace if s.name.startswith("celery.task")]
    gateway_calls = [s for s in in_trace if s.name.startswith("gateway ")]
    assert task, [s.name for s in in_trace]
    assert gateway_calls, [s.name for s in in_trace]
    # The gateway call is made inside the task's span.
    task_ids = {s.context.span_id for s in task}
    assert any(call.parent.span_id in task_ids for call in gateway_calls)
