"""The sale's invariants, checked against PostgreSQL and Redis. Other apps add checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Count, F, Sum

from apps.core.redis import RedisError, get_redis

from .keys import sale_keys
from .models import Unit
from .reconcile import _pending_users_and_units


@dataclass
class AuditReport:
    sale_id: str
    facts: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    title: str = ""  # "Audit of sale <id>" unless set

    @property
    def clean(self) -> bool:
        return not self.problems

    def render(self) -> str:
        title = self.title or f"Audit of sale {self.sale_id}"
        lines = [f"{title}: {'CLEAN' if self.clean else 'PROBLEMS'}"]
        lines += [f"  {name}: {value}" for name, value in self.facts.items()]
        lines += [f"  ✗ {problem}" for problem in self.problems]
        return "\n".join(lines)


AuditCheck = Callable[[object, AuditReport], None]
_checks: list[AuditCheck] = []


def audit_check(fn: AuditCheck) -> AuditCheck:
    _checks.append(fn)
    return fn


def sale_audit(*, sale_id: object) -> AuditReport:
    report = AuditReport(str(sale_id))
    for check in _checks:
        check(sale_id, report)
    return report


@audit_check
def _units_and_orders(sale_id, report: AuditReport) -> None:
    from apps.orders.models import HOLDING_STATUSES, Order, OrderStatus
    from apps.sales.models import FlashSale

    sale = FlashSale.objects.get(id=sale_id)
    holding = Order.objects.filter(sale_id=sale_id, status__in=HOLDING_STATUSES)
    held_by_orders = holding.aggregate(n=Sum("quantity"))["n"] or 0
    units = Unit.objects.filter(sale_id=sale_id)
    unit_rows = units.count()
    units_held = units.filter(order__isnull=False).count()
    # Units of orders refunded after payment stay with them, out of the pool (never resold
    # silently); they are held, but by no holding order.
    units_withheld = units.filter(order__status=OrderStatus.REFUNDED).count()
    by_status = dict(
        Order.objects.filter(sale_id=sale_id)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    report.facts.update(
        total_inventory=sale.total_inventory,
        unit_rows=unit_rows,
        units_held=units_held,
        units_free=unit_rows - units_held,
        units_withheld_by_refunds=units_withheld,
        orders_by_status=by_status,
    )
    if held_by_orders > sale.total_inventory:
        report.problems.append(
            f"oversold: orders hold {held_by_orders} units of {sale.total_inventory}"
        )
    if unit_rows != sale.total_inventory:
        report.problems.append(f"{unit_rows} unit rows for {sale.total_inventory} inventory")
    if units_held - units_withheld != held_by_orders:
        report.problems.append(
            f"units held ({units_held}, {units_withheld} withheld by refunds) differ from the "
            f"quantity of holding orders ({held_by_orders})"
        )
    wrong_holder = units.filter(order__isnull=False).exclude(
        order__status__in=[*HOLDING_STATUSES, OrderStatus.REFUNDED]
    )
    if wrong_holder.exists():
        report.problems.append(f"{wrong_holder.count()} unit(s) held by finished orders")
    mismatched = (
        holding.annotate(n=Count("units")).exclude(n=F("quantity")).values_list("id", flat=True)[:5]
    )
    if mismatched:
        report.problems.append(f"orders holding a wrong number of units: {list(mismatched)}")
    over = (
        holding.values("user_id")
        .annotate(n=Sum("quantity"))
        .filter(n__gt=sale.max_per_user)
        .values_list("user_id", "n")[:5]
    )
    if over:
        report.problems.append(f"shoppers over max_per_user={sale.max_per_user}: {list(over)}")


@audit_check
def _redis_matches_postgres(sale_id, report: AuditReport) -> None:
    keys = sale_keys(sale_id)
    try:
        redis = get_redis()
        if not redis.exists(keys.primed):
            report.facts["redis"] = "not primed (rebuilt from PostgreSQL on next use)"
            return
        redis_free = {int(u) for u in redis.smembers(keys.free)}
        _, pending_units = _pending_users_and_units(redis.hgetall(keys.pending))
    except RedisError as exc:
        report.facts["redis"] = f"unreachable ({exc})"
        return
    pg_free = set(
        Unit.objects.filter(sale_id=sale_id, order__isnull=True).values_list("number", flat=True)
    )
    report.facts.update(redis_units_free=len(redis_free), holds_in_flight=len(pending_units))
    expected = pg_free - pending_units
    if redis_free != expected:
        extra, missing = redis_free - pg_free, expected - redis_free
        report.problems.append(
            f"Redis pool differs from PostgreSQL: {len(extra)} unit(s) free in Redis but held "
            f"in PostgreSQL, {len(missing)} free in PostgreSQL but missing from Redis"
        )
