"""The sale's audit, orders' part: the units PostgreSQL holds against the orders holding
them (registered with inventory's audit in OrdersConfig.ready)."""

from __future__ import annotations

from django.db.models import Count, F, Sum

from apps.inventory.audit import AuditReport, audit_check
from apps.inventory.models import Unit
from apps.sales.models import FlashSale

from .models import HOLDING_STATUSES, Order, OrderStatus


@audit_check
def _units_and_orders(sale_id, report: AuditReport) -> None:
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
