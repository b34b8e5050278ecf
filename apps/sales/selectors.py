"""Reads of sale data. The hot path reads a snapshot from process memory, then Redis, and
PostgreSQL only when neither has it, so refused requests never reach the database."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Q, QuerySet

from apps.core.redis import RedisError, get_redis
from apps.inventory.keys import sale_keys

from .models import FlashSale, SaleStatus


@dataclass(frozen=True)
class SaleSnapshot:
    """What the purchase path needs to know about a sale, cheap to cache."""

    id: str
    product_id: str
    product_name: str
    title: str
    price: str
    currency: str
    total_inventory: int
    starts_ms: int
    ends_ms: int
    max_per_user: int
    reservation_seconds: int
    status: str
    pre_queue_minutes: int
    admission_rate: int
    admission_token_seconds: int

    @property
    def is_open_for_orders(self) -> bool:
        return self.status in (SaleStatus.SCHEDULED, SaleStatus.ACTIVE)

    @property
    def unit_price(self) -> Decimal:
        return Decimal(self.price)

    @property
    def starts_at(self) -> datetime:
        return datetime.fromtimestamp(self.starts_ms / 1000, tz=UTC)

    @property
    def ends_at(self) -> datetime:
        return datetime.fromtimestamp(self.ends_ms / 1000, tz=UTC)


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def snapshot_from_sale(sale: FlashSale) -> SaleSnapshot:
    return SaleSnapshot(
        id=str(sale.id),
        product_id=str(sale.product_id),
        product_name=sale.product.name,
        title=str(sale),
        price=str(sale.price),
        currency=sale.currency,
        total_inventory=sale.total_inventory,
        starts_ms=_ms(sale.start_time),
        ends_ms=_ms(sale.end_time),
        max_per_user=sale.max_per_user,
        reservation_seconds=sale.reservation_seconds,
        status=sale.status,
        pre_queue_minutes=sale.pre_queue_minutes,
        admission_rate=sale.admission_rate,
        admission_token_seconds=sale.admission_token_seconds,
    )


_memory: dict[str, tuple[float, SaleSnapshot | None]] = {}
_MISSING_SECONDS = 5.0


def sale_snapshot_forget(sale_id: object) -> None:
    _memory.pop(str(sale_id), None)


def sale_snapshot_store(snapshot: SaleSnapshot) -> None:
    """Publish the snapshot to Redis for every process (called when a sale is saved)."""
    get_redis().set(sale_keys(snapshot.id).meta, json.dumps(asdict(snapshot)))
    _memory.pop(snapshot.id, None)


def sale_snapshot(sale_id: str) -> SaleSnapshot | None:
    """The sale's snapshot, or None when no such sale exists."""
    try:
        uuid.UUID(str(sale_id))
    except ValueError:
        return None
    now = time.monotonic()
    cached = _memory.get(sale_id)
    if cached and cached[0] > now:
        return cached[1]
    snapshot = None
    raw = None
    try:
        raw = get_redis().get(sale_keys(sale_id).meta)
    except RedisError:
        raw = None
    if raw:
        snapshot = SaleSnapshot(**json.loads(raw))
        _memory[sale_id] = (now + settings.SALE_SNAPSHOT_SECONDS, snapshot)
        return snapshot
    sale = FlashSale.objects.select_related("product").filter(id=sale_id).first()
    if sale is None:
        _memory[sale_id] = (now + _MISSING_SECONDS, None)
        return None
    snapshot = snapshot_from_sale(sale)
    with contextlib.suppress(RedisError):
        sale_snapshot_store(snapshot)
    _memory[sale_id] = (now + settings.SALE_SNAPSHOT_SECONDS, snapshot)
    return snapshot


def sales_upcoming_or_live() -> QuerySet[FlashSale]:
    return FlashSale.objects.upcoming_or_live().select_related("product")


def sales_with_unit_counts(queryset: QuerySet[FlashSale] | None = None) -> QuerySet[FlashSale]:
    """Sales annotated with units sold (paid/fulfilled), reserved and free, from PostgreSQL."""
    queryset = queryset if queryset is not None else FlashSale.objects.all()
    return queryset.annotate(
        units_sold=Count("units", filter=Q(units__order__status__in=["PAID", "FULFILLED"])),
        units_reserved=Count("units", filter=Q(units__order__status="RESERVED")),
        units_free=Count("units", filter=Q(units__order__isnull=True)),
    )


def sale_get(*, sale_id: object) -> FlashSale | None:
    try:
        uuid.UUID(str(sale_id))
    except ValueError:
        return None
    return FlashSale.objects.select_related("product").filter(id=sale_id).first()
