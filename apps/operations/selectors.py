"""What an operator sees of a live sale: the queue from Redis (one pipelined round trip) and
orders and money from PostgreSQL (a few aggregate queries on indexed columns)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.db.models.functions import Now

from apps.core.redis import get_redis
from apps.inventory.keys import sale_keys
from apps.inventory.models import Unit
from apps.inventory.reconcile import last_reconcile_key
from apps.orders.models import Order, OrderStatus
from apps.payments.models import (
    AttemptOutcome,
    DeadLetter,
    Payment,
    PaymentAttempt,
    PaymentStatus,
)
from apps.payments.redis_scripts import breaker_snapshot
from apps.protection.models import FlaggedShopper
from apps.sales.models import FlashSale
from apps.sales.selectors import snapshot_from_sale
from apps.waiting_room.keys import room_keys
from apps.waiting_room.selectors import sale_live_phase

# Only this many sales (the soonest upcoming or live) get per-sale metric labels, so the
# label set stays bounded however many sales an admin creates.
LIVE_SALES_LABELLED = 10


@dataclass
class SaleFigures:
    sale_id: str
    title: str
    phase: str
    starts_ms: int
    ends_ms: int
    server_ms: int
    total_inventory: int
    units_sold: int = 0
    units_held: int = 0
    units_left: int | None = None
    units_free_db: int = 0
    revenue: str = "0.00"
    currency: str = "USD"
    queue_pre: int = 0
    queue_main: int = 0
    queue_back: int = 0
    now_serving: int = 0
    admitted: int = 0
    active: int = 0
    no_shows: int = 0
    configured_rate: int = 0
    measured_rate: float | None = None
    admission_paused: bool = False
    expected_wait_seconds: int | None = None
    orders: dict[str, int] = field(default_factory=dict)
    payments: dict[str, int] = field(default_factory=dict)
    dead_letters_open: int = 0
    payments_pending_stale: int = 0
    breaker: dict[str, str] = field(default_factory=dict)
    bots_flagged: int = 0
    bots_blocked: int = 0
    bots_back_of_queue: int = 0
    last_reconcile: dict | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _int(value) -> int:
    return int(value) if value is not None else 0


def _queue(figures: SaleFigures, sale: FlashSale) -> None:
    keys, inventory = room_keys(sale.id), sale_keys(sale.id)
    pipe = get_redis().pipeline(transaction=False)
    pipe.hmget(
        keys.state, "sealed", "P", "BP", "mpost", "bpost", "sm", "sb", "active", "rate", "noshow"
    )
    pipe.zcard(keys.pre)
    pipe.zcard(keys.back_pre)
    pipe.exists(inventory.primed)
    pipe.scard(inventory.free)
    pipe.get(last_reconcile_key(sale.id))
    state, pre, back_pre, primed, free, reconciled = pipe.execute()
    figures.last_reconcile = json.loads(reconciled) if reconciled else None
    sealed, p, bp, mpost, bpost, sm, sb, active = (_int(v) for v in state[:8])
    rate, no_shows = state[8], state[9]
    if sealed:
        main_tail, back_tail = p + mpost, bp + bpost
        figures.queue_pre = 0
    else:
        main_tail, back_tail = pre, back_pre
        figures.queue_pre = pre + back_pre
    figures.queue_main = max(0, main_tail - sm) if sealed else 0
    figures.queue_back = max(0, back_tail - sb) if sealed else 0
    figures.now_serving = sm + sb
    figures.admitted = sm + sb
    figures.active = active
    figures.units_left = int(free) if primed else None
    measured = float(rate) if rate is not None else None
    figures.measured_rate = round(measured, 2) if measured is not None and measured >= 0 else None
    waiting = figures.queue_main + figures.queue_back
    # The wait of the last shopper in line at the rate the releaser measured (or the
    # configured one before anything was measured).
    rate = figures.measured_rate or sale.admission_rate or 1
    figures.expected_wait_seconds = int(waiting / max(rate, 0.001)) if waiting else 0
    figures.no_shows = _int(no_shows)
    # Joins the bot screen sent to the back lane (its whole length, served or not).
    figures.bots_back_of_queue = (bp + bpost) if sealed else back_pre


def _orders(figures: SaleFigures, sale: FlashSale) -> None:
    by_status = dict(
        Order.objects.filter(sale_id=sale.id)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    figures.orders = {status: by_status.get(status, 0) for status in OrderStatus.values}
    figures.units_sold = (
        Order.objects.filter(
            sale_id=sale.id, status__in=[OrderStatus.PAID, OrderStatus.FULFILLED]
        ).aggregate(n=Sum("quantity"))["n"]
        or 0
    )
    figures.units_held = (
        Order.objects.filter(sale_id=sale.id, status=OrderStatus.RESERVED).aggregate(
            n=Sum("quantity")
        )["n"]
        or 0
    )
    revenue = Order.objects.filter(
        sale_id=sale.id, status__in=[OrderStatus.PAID, OrderStatus.FULFILLED]
    ).aggregate(total=Sum("amount"))["total"]
    figures.revenue = str(revenue or Decimal("0.00"))
    attempts = dict(
        PaymentAttempt.objects.filter(payment__order__sale_id=sale.id, kind="charge")
        .values_list("outcome")
        .annotate(n=Count("id"))
        .values_list("outcome", "n")
    )
    figures.payments = {
        outcome: attempts.get(outcome, 0)
        for outcome in (
            AttemptOutcome.SUCCEEDED,
            AttemptOutcome.DECLINED,
            AttemptOutcome.TIMEOUT,
            AttemptOutcome.ERROR,
            AttemptOutcome.CIRCUIT_OPEN,
        )
    }
    flagged = FlaggedShopper.objects.filter(last_sale_id=sale.id)
    figures.bots_flagged = flagged.count()
    figures.bots_blocked = flagged.filter(blocked=True).count()
    figures.units_free_db = Unit.objects.filter(sale_id=sale.id, order__isnull=True).count()
    figures.payments_pending_stale = Payment.objects.filter(
        order__sale_id=sale.id,
        status=PaymentStatus.PENDING,
        created_at__lt=Now() - timedelta(seconds=settings.PAYMENT_PENDING_STALE_SECONDS),
    ).count()
    figures.dead_letters_open = DeadLetter.objects.filter(
        Q(processed_at__isnull=True), payment__order__sale_id=sale.id
    ).count()


def sale_figures(*, sale: FlashSale) -> SaleFigures:
    figures = SaleFigures(
        sale_id=str(sale.id),
        title=str(sale),
        phase="",
        starts_ms=int(sale.start_time.timestamp() * 1000),
        ends_ms=int(sale.end_time.timestamp() * 1000),
        server_ms=int(time.time() * 1000),
        total_inventory=sale.total_inventory,
        configured_rate=sale.admission_rate,
        currency=getattr(sale, "currency", "USD"),
        admission_paused=getattr(sale, "admission_paused", False),
    )
    _queue(figures, sale)
    _orders(figures, sale)
    figures.phase = sale_live_phase(snapshot_from_sale(sale), units_left=figures.units_left)
    figures.breaker = {
        name: breaker_snapshot(name).get("state", "closed") for name in settings.PAYMENT_GATEWAYS
    }
    return figures


def sales_watched() -> list[FlashSale]:
    """The sales whose figures are worth exporting: live, or about to be, soonest first."""
    return list(FlashSale.objects.upcoming_or_live().order_by("start_time")[:LIVE_SALES_LABELLED])
