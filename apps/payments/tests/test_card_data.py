"""Card data: the full number goes to the gateway and nowhere else (not our database, not the
broker's message, not a log, not an error body); only ASCII digits are a card number; the
gateway decides validity (number, expiry, CVC) before anything is written."""

from __future__ import annotations

import logging
import random
import subprocess
from datetime import date
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.orders.models import Order, OrderStatus
from apps.payments.models import Payment, PaymentStatus
from conftest import bearer

from .conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

NEXT_YEAR = date.today().year + 1
VALID = {"exp_month": 12, "exp_year": NEXT_YEAR, "cvc": "123", "name": "Ada Lovelace"}


def luhn_card(prefix: str = "4", length: int = 16) -> str:
    """A fresh Luhn-valid number, so a hit in a dump can only come from this test."""
    body = prefix + "".join(random.choice("0123456789") for _ in range(length - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def grouped(number: str) -> str:
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4))


def post_pay(client, order, key="k", **body):
    return client.post(
        f"/api/v1/orders/{order.id}/pay",
        {**VALID, **body},
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY=key,
        **bearer(order.user),
    )


def _queued_charge_message() -> bytes:
    """The charge task's message as RabbitMQ holds it (body and headers), read before any
    worker runs and put back."""
    from flashsale.celery import app

    with app.connection_for_write() as conn:
        channel = conn.default_channel
        message = wait_for(
            lambda: channel.basic_get(queue=settings.CELERY_TASK_DEFAULT_QUEUE, no_ack=False),
            timeout=10,
            what="the charge message in the queue",
        )
        body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        raw = body + repr(message.headers).encode() + repr(message.properties).encode()
        channel.basic_reject(message.delivery_info["delivery_tag"], requeue=True)
    return raw


def _pg_dump() -> str:
    return subprocess.run(
        ["pg_dump", "-h", "127.0.0.1", "-U", "postgres", "--data-only",
         settings.DATABASES["default"]["NAME"]],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip


def test_card_number_reaches_only_the_gateway(
    client, pay_settings, worker_factory, make_sale, reserve, caplog
):
    caplog.set_level(logging.DEBUG)
    number = luhn_card()
    order = reserve(make_sale())
    response = post_pay(client, order, card_number=grouped(number))
    assert response.status_code == 202, response.content
    payment = Payment.objects.get(order=order)
    assert payment.card_last4 == number[-4:] and payment.card_brand == "visa"
    assert payment.gateway_tokens["primary"].startswith("tok_")

    message = _queued_charge_message()
    assert str(payment.id).encode() in message  # it is the charge's message
    worker = worker_factory(LOG_LEVEL="DEBUG")
    wait_for(
        lambda: Order.objects.get(id=order.id).status == OrderStatus.PAID,
        timeout=30,
        what="the worker to charge the token",
    )
    dump = _pg_dump()
    assert payment.idempotency_key in dump  # the dump holds the payment's row
    worker_log = Path(worker.log.name).read_text()
    assert "payments.charge" in worker_log and "succeeded" in worker_log  # it ran the charge
    for form in (number, grouped(number)):
        assert form.encode() not in message
        assert form not in dump
        assert form not in worker_log
        assert form not in caplog.text
        assert form not in response.content.decode()


@pytest.mark.parametrize(
    "number",
    [
        "４２４２４２４２４２４２４２４２",  # full-width
        "٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢",  # Arabic-Indic
        "4242424242424²42",  # a superscript two
    ],
)
def test_non_ascii_digits_are_refused_400(client, pay_settings, make_sale, reserve, number):
    order = reserve(make_sale())
    response = post_pay(client, order, card_number=number)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_card_number"
    assert number not in response.content.decode()
    assert not Payment.objects.exists()
    assert Order.objects.get(id=order.id).status == OrderStatus.RESERVED


@pytest.mark.parametrize(
    "body, code, says",
    [
        ({"card_number": "4242424242424241"}, "incorrect_number", "card number is incorrect"),
        ({"exp_month": 1, "exp_year": 2020}, "expired_card", "card has expired"),
        ({"exp_month": 13}, "invalid_expiry_month", "expiry date"),
        ({"cvc": "12"}, "invalid_cvc", "security code"),
        ({"cvc": "１２３"}, "invalid_cvc", "security code"),
    ],
)
def test_the_gateway_refuses_a_bad_card_before_anything_is_written(
    client, pay_settings, make_sale, reserve, body, code, says
):
    order = reserve(make_sale())
    response = post_pay(client, order, **{"card_number": "4242424242424242", **body})
    assert response.status_code == 402, response.content
    assert response.json()["error"] == code
    assert says in response.json()["detail"] and "(" not in response.json()["detail"]
    assert "4242424242424242" not in response.content.decode()
    assert not Payment.objects.exists()
    assert Order.objects.get(id=order.id).status == OrderStatus.RESERVED  # try again


def test_migration_masks_card_numbers_already_stored(pay_settings, make_sale, reserve):
    number = luhn_card("54")
    order = reserve(make_sale())
    executor = MigrationExecutor(connection)
    executor.migrate([("payments", "0002_refund_origin")])
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO payments_payment (id, order_id, user_id, amount, currency, status, "
                "client_key, idempotency_key, payment_method, card_last4, gateway, "
                "gateway_charge_id, refund_idempotency_key, gateway_refund_id, attempts, "
                "failure_code, failure_reason, refund_origin, refunded_by, created_at, updated_at) "
                "VALUES (gen_random_uuid(), "
                "%s, %s, 10, 'USD', 'FAILED', 'old', 'old-key', %s, '', 'primary', '', '', '', 1, "
                "'card_declined', 'card declined (card_declined)', '', '', now(), now())",
                [order.id, order.user_id, number],
            )
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    payment = Payment.objects.get(idempotency_key="old-key")
    assert payment.card_last4 == number[-4:] and payment.card_brand == "mastercard"
    assert payment.status == PaymentStatus.FAILED
    assert number not in _pg_dump()
