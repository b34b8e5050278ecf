"""The circuit breaker shared through Redis, the WebSocket push, and the audit's payment
checks (each shown to catch what it is for)."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from apps.inventory.audit import sale_audit
from apps.orders.models import Order, OrderStatus
from apps.orders.notifications import order_notify
from apps.payments.models import Payment, PaymentStatus
from apps.payments.redis_scripts import breaker_allow, breaker_record, job_lock
from apps.payments.services import payment_charge_attempt, payment_create

from .test_services import OK, window_closed


def test_breaker_opens_after_threshold_probes_once_and_closes(settings):
    settings.PAYMENT_BREAKER_THRESHOLD = 5
    settings.PAYMENT_BREAKER_OPEN_SECONDS = 0.5
    for _ in range(4):
        assert breaker_record("gw", success=False) == "closed"
    assert breaker_allow("gw").state == "closed"
    assert breaker_record("gw", success=False) == "open"
    state = breaker_allow("gw")
    assert state.state == "open" and 0 < state.wait_seconds <= 0.5
    time.sleep(0.6)
    assert breaker_allow("gw").state == "probe"  # one caller gets the trial
    assert breaker_allow("gw").state == "open"  # the others keep waiting
    assert breaker_record("gw", success=False) == "open"  # failed probe: open again
    time.sleep(0.6)
    assert breaker_allow("gw").state == "probe"
    assert breaker_record("gw", success=True) == "closed"
    assert breaker_allow("gw").state == "closed"


def test_a_success_resets_the_consecutive_failures(settings):
    settings.PAYMENT_BREAKER_THRESHOLD = 3
    breaker_record("gw2", success=False)
    breaker_record("gw2", success=False)
    breaker_record("gw2", success=True)
    breaker_record("gw2", success=False)
    assert breaker_record("gw2", success=False) == "closed"


def test_job_lock_is_single_and_released_by_its_owner():
    with job_lock("t", seconds=5) as first, job_lock("t", seconds=5) as second:
        assert first and not second
    with job_lock("t", seconds=5) as again:
        assert again


@pytest.mark.django_db(transaction=True)
def test_order_page_socket_gets_the_outcome(pay_settings, make_sale, reserve):
    from channels.routing import URLRouter

    from apps.payments.routing import websocket_urlpatterns

    order = reserve(make_sale())
    user = order.user

    async def scenario():
        from channels.db import database_sync_to_async

        communicator = WebsocketCommunicator(
            URLRouter(websocket_urlpatterns), f"/ws/orders/{order.id}/payment/"
        )
        communicator.scope["user"] = user
        connected, _ = await communicator.connect()
        assert connected
        first = await communicator.receive_json_from(timeout=5)
        assert first["type"] == "order.state" and first["status"] == "reserved"
        await database_sync_to_async(order_notify)(order_id=order.id, event="paid")
        pushed = await communicator.receive_json_from(timeout=5)
        assert pushed["type"] == "order.update" and pushed["event"] == "paid"
        await communicator.disconnect()

    async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
def test_audit_flags_kept_money_without_a_paid_order(pay_settings, make_sale, reserve):
    sale = make_sale()
    order = reserve(sale)
    payment, _ = payment_create(order_id=order.id, user_id=order.user_id, card_number=OK)
    payment_charge_attempt(payment_id=payment.id)
    assert sale_audit(sale_id=sale.id).clean
    # Break it: the order lost its PAID status while the money stays taken.
    Order.objects.filter(id=order.id).update(status=OrderStatus.EXPIRED)
    problems = " ".join(sale_audit(sale_id=sale.id).problems)
    assert "successful payment(s) whose order is not PAID" in problems
    assert "kept without a PAID order" in problems


@pytest.mark.django_db(transaction=True)
def test_audit_flags_a_reservation_left_past_the_bound(pay_settings, make_sale, reserve):
    sale = make_sale()
    order = reserve(sale)
    window_closed(order, seconds_ago=pay_settings.PAYMENT_SETTLE_GRACE_SECONDS + 60)
    problems = " ".join(sale_audit(sale_id=sale.id).problems)
    assert "still RESERVED" in problems
    assert Payment.objects.filter(status=PaymentStatus.PENDING).count() == 0
