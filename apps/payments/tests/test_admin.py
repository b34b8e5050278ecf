"""Issue 15, admin item 3: payments are read-only in the admin; a refund is an audited
action that calls the REAL gateway process."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.core import mail

from apps.orders.models import Order, OrderStatus
from apps.payments.models import Payment, PaymentStatus, RefundOrigin

from .test_services import OK, drive, pay

pytestmark = pytest.mark.django_db(transaction=True)
CHANGELIST = "/admin/payments/payment/"


@pytest.fixture
def paid(pay_settings, make_sale, reserve):
    order = reserve(make_sale(inventory=1))
    payment = pay(order, OK)
    assert drive(payment.id) == ["succeeded"]
    return payment


def test_payment_records_are_read_only_in_the_admin(client, django_user_model, paid):
    boss = django_user_model.objects.create_superuser("boss", "boss@example.test", "pw")
    client.force_login(boss)
    listing = client.get(CHANGELIST)
    assert listing.status_code == 200
    assert b"delete_selected" not in listing.content
    assert b"Add payment" not in listing.content
    assert client.get(CHANGELIST + "add/").status_code == 403
    detail = client.get(f"{CHANGELIST}{paid.id}/change/")
    assert detail.status_code == 200 and b'name="_save"' not in detail.content
    edit = client.post(f"{CHANGELIST}{paid.id}/change/", {"status": "FAILED", "amount": "0.01"})
    assert edit.status_code == 403
    assert client.post(f"{CHANGELIST}{paid.id}/delete/", {"post": "yes"}).status_code == 403
    client.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [str(paid.id)], "post": "yes"}
    )
    kept = Payment.objects.get(id=paid.id)
    assert kept.status == PaymentStatus.SUCCEEDED and kept.amount == paid.amount
    assert client.get("/admin/payments/deadletter/add/").status_code == 403


def test_a_refund_in_the_admin_calls_the_gateway_once_and_records_who(
    client, django_user_model, paid, gateway
):
    cashier = django_user_model.objects.create_user("cashier", "c@example.test", "pw")
    cashier.is_staff = True
    cashier.save()
    cashier.user_permissions.add(Permission.objects.get(codename="view_payment"))
    client.force_login(cashier)
    # Seeing payments is not enough to refund them.
    assert b"refund_at_gateway" not in client.get(CHANGELIST).content
    cashier.user_permissions.add(Permission.objects.get(codename="refund_payment"))
    assert b"refund_at_gateway" in client.get(CHANGELIST).content

    refund = {"action": "refund_at_gateway", "_selected_action": [str(paid.id)]}
    page = client.post(CHANGELIST, refund, follow=True)
    assert "1 refunded" in page.content.decode()
    payment = Payment.objects.get(id=paid.id)
    assert payment.status == PaymentStatus.REFUNDED and payment.gateway_refund_id
    assert (payment.refund_origin, payment.refunded_by) == (RefundOrigin.OPERATOR, "cashier")
    order = Order.objects.get(id=paid.order_id)
    assert order.status == OrderStatus.REFUNDED and "cashier" in order.status_reason
    assert order.units.count() == 1  # withheld, not back on sale
    charge = gateway.charge_of(payment.idempotency_key)
    assert charge["refunded"] is True
    logged = payment.attempt_log.filter(kind="refund")
    assert [a.detail.split(":")[0] for a in logged] == ["by operator cashier"]
    history = LogEntry.objects.get(object_id=str(payment.id))
    assert history.user == cashier and "Refunded at the gateway" in history.get_change_message()
    assert any("refunded" in m.subject for m in mail.outbox)

    # Clicked again: nothing more happens at the gateway.
    again = client.post(CHANGELIST, refund, follow=True)
    assert "1 already refunded" in again.content.decode()
    assert payment.attempt_log.filter(kind="refund").count() == 1
