"""Money audits: the gateways' ledgers against our payments and orders, both ways, refunds
included. A sale's part runs in ``manage.py audit_sale``; the whole shop's in
``manage.py audit_payments``."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Q
from django.db.models.functions import Now
from django.utils import timezone

from apps.core.redis import RedisError, get_redis
from apps.inventory.audit import AuditReport, audit_check
from apps.inventory.keys import sale_keys
from apps.inventory.models import Unit
from apps.inventory.reconcile import _pending_users_and_units
from apps.orders.models import Order, OrderStatus
from apps.sales.models import FlashSale

from .gateways.base import ChargeRecord, GatewayError, gateway_get, gateway_names
from .models import Payment, PaymentStatus, RefundOrigin

# How late the expiry job may be (beat runs it every 5 s; one batch takes well under 5 s).
EXPIRY_SLACK_SECONDS = 30

# {gateway name: {payment key: the charge under that key}}, or None for an unreachable one.
Ledger = dict[str, dict[str, ChargeRecord] | None]


@audit_check
def _charges_map_to_orders(sale_id, report: AuditReport) -> None:
    """The sale's money: every charge at the gateways under one of its payments' keys
    against the payment and order states, and back."""
    payments = Payment.objects.filter(order__sale_id=sale_id)
    keys = list(payments.values_list("idempotency_key", flat=True))
    ledger: Ledger = {}
    for name in gateway_names():
        try:
            found = gateway_get(name).lookup_many(idempotency_keys=keys) if keys else {}
        except GatewayError as exc:
            report.facts[f"gateway_{name}"] = f"unreachable ({exc})"
            ledger[name] = None
            continue
        ledger[name] = {k: c for k, c in found.items() if c is not None}
    money_compare(payments=payments, ledger=ledger, report=report, sale_id=sale_id)


def money_compare(*, payments, ledger: Ledger, report: AuditReport, sale_id=None) -> None:
    """Both ways: each payment's state against its charge at the gateway (kept, refunded or
    disputed) and its order's state; each charge of ours at the gateway against a payment
    and order that account for it."""
    kept_orders = (OrderStatus.PAID, OrderStatus.FULFILLED)
    rows = list(payments.select_related("order"))
    report.facts["payments_by_status"] = dict(Counter(p.status for p in rows))
    origins = Counter(p.refund_origin for p in rows if p.status == PaymentStatus.REFUNDED)
    report.facts["refunds_by_origin"] = dict(origins)
    report.facts["refunded_at_gateway"] = (
        origins[RefundOrigin.GATEWAY] + origins[RefundOrigin.DISPUTE]
    )

    def problem(what: str, ids: list) -> None:
        if ids:
            report.problems.append(f"{len(ids)} {what}: {ids[:5]}")

    def charge_of(p: Payment) -> ChargeRecord | None | bool:
        """The payment's own charge; False when its gateway could not be asked."""
        found = ledger.get(p.gateway)
        if found is None:
            return False
        record = found.get(p.idempotency_key)
        if record is None or record.merchant_id != settings.PAYMENT_MERCHANT_ID:
            return None
        return record if record.charge_id == p.gateway_charge_id else None

    succeeded = [p for p in rows if p.status == PaymentStatus.SUCCEEDED]
    refunded = [p for p in rows if p.status == PaymentStatus.REFUNDED]
    problem(
        "successful payment(s) whose order is not PAID",
        [str(p.id) for p in succeeded if p.order.status not in kept_orders],
    )
    problem(
        "successful payment(s) with no charge kept at the gateway",
        [str(p.id) for p in succeeded if charge_of(p) is None],
    )
    problem(
        "payment(s) refunded or disputed at the gateway, order still PAID (reconciliation "
        "moves them)",
        [str(p.id) for p in succeeded if charge_of(p) and not charge_of(p).kept],
    )
    problem(
        "refunded payment(s) whose order is still PAID",
        [str(p.id) for p in refunded if p.order.status in kept_orders],
    )
    problem(
        "refunded payment(s) whose money the gateway still holds",
        [str(p.id) for p in refunded if charge_of(p) and charge_of(p).kept],
    )
    paid_twice = Counter(p.order_id for p in succeeded)
    problem("order(s) paid twice", [str(o) for o, n in paid_twice.items() if n > 1])
    orders = Order.objects.filter(status__in=kept_orders)
    if sale_id is not None:
        orders = orders.filter(sale_id=sale_id)
    else:
        orders = orders.filter(id__in={p.order_id for p in rows})
    problem(
        "PAID order(s) without a successful payment",
        [
            str(o)
            for o in orders.exclude(payments__status=PaymentStatus.SUCCEEDED).values_list(
                "id", flat=True
            )[:100]
        ],
    )

    # The other way: money the gateways hold under our keys must be a kept payment's.
    accounted = {
        (p.gateway, p.gateway_charge_id) for p in succeeded if p.order.status in kept_orders
    }
    paid_total = sum((p.amount for p in succeeded if p.order.status in kept_orders), Decimal(0))
    report.facts["money_paid_orders"] = str(paid_total)
    for name, found in ledger.items():
        if found is None:
            continue
        ours = [c for c in found.values() if c.merchant_id == settings.PAYMENT_MERCHANT_ID]
        kept = [c for c in ours if c.kept]
        gone = [c for c in ours if c.status == "succeeded" and not c.kept]
        report.facts[f"gateway_{name}_charges_kept"] = len(kept)
        report.facts[f"gateway_{name}_money_kept"] = str(sum((c.amount for c in kept), Decimal(0)))
        report.facts[f"gateway_{name}_charges_refunded_or_disputed"] = len(gone)
        others = len(found) - len(ours)
        if others:
            report.facts[f"gateway_{name}_other_merchants_under_our_keys"] = others
        problem(
            f"charge(s) on {name} kept without a PAID order",
            [c.charge_id for c in kept if (name, c.charge_id) not in accounted],
        )


@audit_check
def _no_reservation_past_bound(sale_id, report: AuditReport) -> None:
    bound = settings.PAYMENT_SETTLE_GRACE_SECONDS + EXPIRY_SLACK_SECONDS
    late = Order.objects.filter(
        sale_id=sale_id,
        status=OrderStatus.RESERVED,
        reserved_until__lt=Now() - timedelta(seconds=bound),
    ).count()
    if late:
        report.problems.append(f"{late} order(s) still RESERVED over {bound} s past expiry")


@audit_check
def _units_add_up(sale_id, report: AuditReport) -> None:
    """Units held + units available = total, in PostgreSQL and in Redis."""
    total = FlashSale.objects.values_list("total_inventory", flat=True).get(id=sale_id)
    held = Unit.objects.filter(sale_id=sale_id, order__isnull=False).count()
    free = Unit.objects.filter(sale_id=sale_id, order__isnull=True).count()
    if held + free != total:
        report.problems.append(f"PostgreSQL: {held} held + {free} free != {total} total")
    keys = sale_keys(sale_id)
    try:
        redis = get_redis()
        if not redis.exists(keys.primed):
            return
        redis_free = redis.scard(keys.free)
        _, in_flight = _pending_users_and_units(redis.hgetall(keys.pending))
    except RedisError:
        return
    if redis_free + held + len(in_flight) != total:
        report.problems.append(
            f"Redis: {redis_free} available + {held} held + {len(in_flight)} in flight "
            f"!= {total} total"
        )


def payments_audit(*, days: float = 1.0) -> AuditReport:
    """The whole shop's money over the last ``days`` (0: all time): every charge the
    gateways list as created, refunded or disputed in that time (all pages), ours against
    our payments and orders and back; other merchants' charges counted, never judged."""
    since = timezone.now() - timedelta(days=days) if days else timezone.now().replace(year=1970)
    report = AuditReport("payments", title=f"Audit of payments since {since:%Y-%m-%d %H:%M} UTC")
    report.facts["merchant_id"] = settings.PAYMENT_MERCHANT_ID
    ledger: Ledger = {}
    keys: set[str] = set()
    for name in gateway_names():
        found: dict[str, ChargeRecord] = {}
        foreign = 0
        try:
            for charge in gateway_get(name).charges_changed_all(since=since.isoformat()):
                if charge.merchant_id == settings.PAYMENT_MERCHANT_ID:
                    found[charge.idempotency_key] = charge
                else:
                    foreign += 1
        except GatewayError as exc:
            report.facts[f"gateway_{name}"] = f"unreachable ({exc})"
            ledger[name] = None
            continue
        ledger[name] = found
        keys |= found.keys()
        report.facts[f"gateway_{name}_other_merchants_charges"] = foreign
    payments = Payment.objects.filter(Q(created_at__gte=since) | Q(idempotency_key__in=keys))
    known = set(payments.values_list("idempotency_key", flat=True))
    for name, found in ledger.items():
        if found:
            lost = [
                c.charge_id for k, c in found.items() if k not in known and c.status == "succeeded"
            ]
            if lost:
                report.problems.append(
                    f"{len(lost)} charge(s) on {name} carry our merchant id but no payment of "
                    f"ours has their key: {lost[:5]}"
                )
    money_compare(payments=payments, ledger=ledger, report=report)
    report.facts["orders_by_status"] = dict(
        payments.values_list("order__status")
        .annotate(n=Count("order_id", distinct=True))
        .values_list("order__status", "n")
    )
    return report
