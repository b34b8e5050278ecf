"""Payment invariants added to ``manage.py audit_sale``."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.db.models.functions import Now

from apps.inventory.audit import AuditReport, audit_check

from .gateways.base import GatewayError, gateway_get, gateway_names
from .models import Payment, PaymentStatus

# How late the expiry job may be (beat runs it every 5 s; one batch takes well under 5 s).
EXPIRY_SLACK_SECONDS = 30


@audit_check
def _charges_map_to_orders(sale_id, report: AuditReport) -> None:
    """Every successful charge maps to exactly one PAID (or FULFILLED) or REFUNDED order."""
    from apps.orders.models import Order, OrderStatus

    payments = Payment.objects.filter(order__sale_id=sale_id)
    by_status = dict(
        payments.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    report.facts["payments_by_status"] = by_status
    kept = payments.filter(status=PaymentStatus.SUCCEEDED)
    wrong = kept.exclude(order__status__in=[OrderStatus.PAID, OrderStatus.FULFILLED])
    if wrong.exists():
        report.problems.append(
            f"{wrong.count()} successful payment(s) whose order is not PAID: "
            f"{list(wrong.values_list('id', flat=True)[:5])}"
        )
    twice = kept.values("order_id").annotate(n=Count("id")).filter(n__gt=1)
    if twice.exists():
        report.problems.append(f"orders paid twice: {[r['order_id'] for r in twice[:5]]}")
    paid_without = (
        Order.objects.filter(sale_id=sale_id, status__in=[OrderStatus.PAID, OrderStatus.FULFILLED])
        .exclude(payments__status=PaymentStatus.SUCCEEDED)
        .count()
    )
    if paid_without:
        report.problems.append(f"{paid_without} PAID order(s) without a successful payment")

    # The gateways' own ledgers: money taken and not given back must belong to a kept
    # payment of a PAID order.
    keys = list(payments.values_list("idempotency_key", flat=True))
    kept_charges = set(
        kept.filter(order__status__in=[OrderStatus.PAID, OrderStatus.FULFILLED]).values_list(
            "gateway", "gateway_charge_id"
        )
    )
    for name in gateway_names():
        try:
            found = gateway_get(name).lookup_many(idempotency_keys=keys) if keys else {}
        except GatewayError as exc:
            report.facts[f"gateway_{name}"] = f"unreachable ({exc})"
            continue
        taken = [c for c in found.values() if c and c.status == "succeeded" and not c.refunded]
        report.facts[f"gateway_{name}_charges_kept"] = len(taken)
        stray = [c.charge_id for c in taken if (name, c.charge_id) not in kept_charges]
        if stray:
            report.problems.append(
                f"{len(stray)} charge(s) on {name} kept without a PAID order: {stray[:5]}"
            )


@audit_check
def _no_reservation_past_bound(sale_id, report: AuditReport) -> None:
    from apps.orders.models import Order, OrderStatus

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
    from apps.core.redis import RedisError, get_redis
    from apps.inventory.keys import sale_keys
    from apps.inventory.models import Unit
    from apps.inventory.reconcile import _pending_users_and_units
    from apps.sales.models import FlashSale

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
