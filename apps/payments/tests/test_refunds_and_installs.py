"""Issue 9.1: money that is not ours, and refunds made at the gateway. A REAL gateway
process (a ledger of the test's own), a REAL Celery worker, and for two installs a second
install of the shop as its own processes on its own database."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import uuid

import httpx
import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command

from apps.inventory.audit import sale_audit
from apps.inventory.models import Unit
from apps.orders.models import Order, OrderStatus
from apps.payments.audit import payments_audit
from apps.payments.models import Payment, PaymentStatus, RefundOrigin
from apps.payments.services import payments_reconcile
from apps.payments.tasks import reconcile_payments
from conftest import admitted, bearer

from .conftest import ROOT, RUN, GatewayProcess, wait_for
from .test_services import OK

pytestmark = pytest.mark.django_db(transaction=True)
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def own_ledger(fresh_gateway_ledger, request):
    """A gateway process whose ledger holds this test's charges only."""
    process = GatewayProcess(request.node.name.removeprefix("test_")[:40])
    process.start()
    yield process
    process.stop()


class SecondInstall:
    """Another install of the shop on the same PostgreSQL and Redis servers and the same
    gateway: its own database (so its own merchant identity) and key prefix."""

    def __init__(self, gateway_url: str):
        self.db = f"test_flashsale_{RUN}_second"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "flashsale.settings.base",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{self.db}",
            "REDIS_URL": settings.REDIS_URL,
            "REDIS_KEY_PREFIX": settings.REDIS_KEY_PREFIX + "second:",
            "PAYMENT_GATEWAY_URL": gateway_url,
            "CELERY_TASK_ALWAYS_EAGER": "1",  # its charges run in its own process
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "DEBUG": "1",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "LOG_LEVEL": "ERROR",
        }
        self.env.pop("PAYMENT_MERCHANT_ID", None)
        self.env.pop("TEST_RUN_NAME", None)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
            check=check, timeout=120,
        )  # fmt: skip

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("manage.py", *args, check=check)

    def shop(self, *args: str) -> dict:
        out = self.run("-m", "apps.payments.tests.second_install", *args).stdout
        return json.loads(out.strip().splitlines()[-1])

    def create(self) -> None:
        self.drop()
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db}"')
        self.manage("migrate", "--noinput", "-v", "0")

    def drop(self) -> None:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')


@pytest.fixture
def second_install(own_ledger):
    install = SecondInstall(own_ledger.url)
    install.create()
    try:
        yield install
    finally:
        install.drop()


def pay_through_the_api(client, order) -> None:
    response = client.post(
        f"/api/v1/orders/{order.id}/pay",
        {"card_number": OK, "exp_month": "12", "exp_year": "2040", "cvc": "123"},
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY=f"pay-{order.id}",
        **bearer(order.user),
    )
    assert response.status_code == 202, response.content


def wait_all(order_ids, status, *, timeout: float = 40) -> None:
    wait_for(
        lambda: (
            set(Order.objects.filter(id__in=order_ids).values_list("status", flat=True)) == {status}
        ),
        timeout=timeout,
        what=f"orders {status}",
    )


def test_two_installs_on_one_gateway_both_reconciling_lose_nothing(
    client, pay_settings, use_gateways, own_ledger, second_install, worker_factory, make_sale,
    reserve,
):  # fmt: skip
    use_gateways(own_ledger.url)
    worker_factory(PAYMENT_GATEWAY_URL=own_ledger.url)
    sale = make_sale(inventory=2)
    ours = [reserve(sale) for _ in range(2)]
    for order in ours:
        pay_through_the_api(client, order)
    wait_all([o.id for o in ours], OrderStatus.PAID)
    theirs = second_install.shop("pay", "2")
    assert set(theirs["orders"].values()) == {"PAID"}
    assert theirs["merchant_id"] != settings.PAYMENT_MERCHANT_ID

    charges = own_ledger.charges()
    assert len(charges) == 4
    merchants = [c["metadata"].get("merchant_id") for c in charges]
    assert sorted(merchants) == sorted(
        [settings.PAYMENT_MERCHANT_ID] * 2 + [theirs["merchant_id"]] * 2
    )
    assert all(c["metadata"]["payment_key"] == c["idempotency_key"] for c in charges)

    # Both installs reconcile: nothing is refunded anywhere.
    report = payments_reconcile()
    assert report.actions == {} and report.unmatched_charges == []
    assert report.foreign_charges == 2  # the other install's, counted and left alone
    out = second_install.manage("reconcile_payments").stdout
    assert "corrections: none" in out, out
    assert [c["refunded"] for c in own_ledger.charges()] == [False] * 4
    assert set(
        Order.objects.filter(id__in=[o.id for o in ours]).values_list("status", flat=True)
    ) == {"PAID"}
    assert set(second_install.shop("state")["orders"].values()) == {"PAID"}

    # Each install's money audit is clean and sees the other's charges as another merchant's.
    audit = payments_audit()
    assert audit.clean, audit.render()
    assert audit.facts["gateway_primary_other_merchants_charges"] == 2
    assert audit.facts["gateway_primary_charges_kept"] == 2
    theirs_audit = second_install.manage("audit_payments", check=False)
    assert theirs_audit.returncode == 0, theirs_audit.stdout + theirs_audit.stderr
    assert "gateway_primary_other_merchants_charges: 2" in theirs_audit.stdout


def test_a_refund_or_dispute_made_at_the_gateway_reaches_the_order(
    client, pay_settings, use_gateways, own_ledger, worker_factory, make_sale, reserve,
    make_shopper,
):  # fmt: skip
    use_gateways(own_ledger.url)
    worker_factory(PAYMENT_GATEWAY_URL=own_ledger.url)
    sale = make_sale(inventory=2)
    refunded, disputed = reserve(sale), reserve(sale)
    for order in (refunded, disputed):
        pay_through_the_api(client, order)
    wait_all([refunded.id, disputed.id], OrderStatus.PAID)
    charge_of = {
        p.order_id: p.gateway_charge_id
        for p in Payment.objects.filter(status=PaymentStatus.SUCCEEDED)
    }

    # Directly at the gateway, not through the shop.
    own_ledger.refund_directly(charge_of[refunded.id])
    own_ledger.dispute(charge_of[disputed.id])
    reconcile_payments.delay()  # the beat's job, run by the real worker
    wait_all([refunded.id, disputed.id], OrderStatus.REFUNDED)

    origins = dict(Payment.objects.values_list("order_id", "refund_origin"))
    assert origins == {refunded.id: RefundOrigin.GATEWAY, disputed.id: RefundOrigin.DISPUTE}
    assert set(Payment.objects.values_list("status", flat=True)) == {PaymentStatus.REFUNDED}

    # The shoppers are told.
    def refund_mails():
        texts = [m.read_text() for m in worker_factory.mail_dir.iterdir()]
        return [t for t in texts if "Your payment was refunded" in t]

    mails = wait_for(lambda: len(refund_mails()) == 2 and refund_mails(), timeout=15, what="mails")
    assert any(refunded.user.email in m for m in mails)
    assert any(disputed.user.email in m for m in mails)

    # The units are not silently sold again: they stay with the refunded orders.
    assert Unit.objects.filter(order_id__in=[refunded.id, disputed.id]).count() == 2
    latecomer = make_shopper()
    response = client.post(
        f"/api/v1/flash_sales/{sale.id}/purchase",
        {"quantity": 1},
        content_type="application/json",
        HTTP_X_IDEMPOTENCY_KEY="late-1",
        **admitted(latecomer, sale),
    )
    assert response.status_code == 410, response.content

    # The audits count it, and find nothing wrong.
    report = sale_audit(sale_id=sale.id)
    assert report.clean, report.render()
    assert report.facts["refunded_at_gateway"] == 2
    assert report.facts["units_withheld_by_refunds"] == 2
    assert report.facts["gateway_primary_charges_kept"] == 0
    call_command("audit_payments")  # raises CommandError when the money does not add up
    # A second reconciliation has nothing left to do.
    assert payments_reconcile().actions == {}


def test_a_charge_with_our_merchant_id_but_no_payment_is_reported_never_refunded(
    pay_settings, use_gateways, own_ledger
):
    """E.g. the database was restored from a backup older than the charge: the money may be
    ours, but no payment proves it, so an operator decides; nothing refunds it."""
    use_gateways(own_ledger.url)
    key = f"order-{uuid.uuid4()}-0123456789abcdef"
    httpx.post(
        own_ledger.url + "/v1/charges",
        json={
            "amount": "10.00",
            "card": OK,
            "idempotency_key": key,
            "metadata": {"merchant_id": settings.PAYMENT_MERCHANT_ID, "payment_key": key},
        },
        timeout=5,
    ).raise_for_status()
    report = payments_reconcile()
    assert report.actions == {} and len(report.unmatched_charges) == 1
    assert own_ledger.charge_of(key)["refunded"] is False
    audit = payments_audit()
    assert not audit.clean
    assert "carry our merchant id but no payment of ours" in " ".join(audit.problems)
