"""Sale operations: create, change, start now, cancel. Each keeps the published snapshot in
step, and tells inventory (``stock.py``) so that the unit rows and the Redis pool follow."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models.functions import Now
from django.utils import timezone

from apps.core.errors import ApplicationError, Conflict
from apps.core.redis import RedisError

from .models import MAX_INVENTORY, FlashSale, Product, SaleStatus
from .selectors import sale_snapshot_store, sale_units_held, snapshot_from_sale
from .stock import sale_inventory_changed, sale_published

logger = logging.getLogger(__name__)


def sale_publish(*, sale_id: object) -> None:
    """Pre-warm: publish the snapshot; inventory then rebuilds the Redis pool from PostgreSQL."""
    sale = FlashSale.objects.select_related("product").get(id=sale_id)
    try:
        sale_snapshot_store(snapshot_from_sale(sale))
        sale_published.send(sender=FlashSale, sale_id=sale.id)
    except RedisError:
        logger.warning("could not pre-warm sale %s in Redis; it will be on first use", sale.id)


def _sale_publish_on_commit(sale_id: object) -> None:
    transaction.on_commit(lambda: sale_publish(sale_id=sale_id))


def _inventory_change_announce(sale: FlashSale, *, units_added: list[int]) -> None:
    """Inside the sale's transaction: inventory makes the unit rows match the total (and
    puts ``units_added`` in a live pool once committed)."""
    sale_inventory_changed.send(
        sender=FlashSale,
        sale_id=sale.id,
        total_inventory=sale.total_inventory,
        units_added=units_added,
    )


@transaction.atomic
def sale_create(
    *,
    product: Product,
    price: Decimal,
    total_inventory: int,
    start_time: datetime,
    end_time: datetime,
    max_per_user: int = 1,
    title: str = "",
    **options,
) -> FlashSale:
    sale = FlashSale(
        product=product,
        price=price,
        total_inventory=total_inventory,
        start_time=start_time,
        end_time=end_time,
        max_per_user=max_per_user,
        title=title,
        **options,
    )
    sale.full_clean()
    sale.save()
    _inventory_change_announce(sale, units_added=[])
    _sale_publish_on_commit(sale.id)
    return sale


@transaction.atomic
def sale_saved(*, sale: FlashSale) -> None:
    """After an admin created or edited a sale: match the unit rows and re-publish."""
    FlashSale.objects.select_for_update().filter(id=sale.id).first()
    held = sale_units_held(sale_id=sale.id)
    if sale.total_inventory < held:
        raise Conflict(f"{held} units are already reserved or sold; inventory cannot go lower.")
    _inventory_change_announce(sale, units_added=[])
    _sale_publish_on_commit(sale.id)


def sale_is_locked(sale, *, now: datetime | None = None) -> bool:
    """Once the waiting room opens, shoppers queue for this price, start and limit: from
    then on those terms stay as they are, and inventory may only grow."""
    now = now or timezone.now()
    if sale.status != SaleStatus.SCHEDULED:
        return True
    return now >= sale.start_time - timedelta(minutes=sale.pre_queue_minutes)


@transaction.atomic
def sale_inventory_grow(*, sale_id: object, total_inventory: int) -> FlashSale:
    """Add units to a sale, live or not: new unit rows in PostgreSQL, then (after the
    commit) the same unit numbers in the Redis pool. Inventory never shrinks here."""
    sale = FlashSale.objects.select_for_update().select_related("product").get(id=sale_id)
    if total_inventory < sale.total_inventory:
        raise Conflict(
            f"Inventory can only grow: this sale has {sale.total_inventory} units, "
            f"so it cannot be set to {total_inventory}."
        )
    if total_inventory == sale.total_inventory:
        return sale
    if total_inventory > MAX_INVENTORY:
        raise ApplicationError(f"A sale can have at most {MAX_INVENTORY:,} units.")
    numbers = list(range(sale.total_inventory, total_inventory))
    FlashSale.objects.filter(id=sale.id).update(total_inventory=total_inventory)
    sale.refresh_from_db()
    _inventory_change_announce(sale, units_added=numbers)
    _snapshot_publish_on_commit(sale)
    return sale


def _snapshot_publish_on_commit(sale: FlashSale) -> None:
    def store() -> None:
        try:
            sale_snapshot_store(snapshot_from_sale(sale))
        except RedisError:
            logger.warning("could not publish sale %s in Redis; it refreshes on its own", sale.id)

    transaction.on_commit(store)


@transaction.atomic
def sale_start_now(*, sale_id: object) -> FlashSale:
    sale = FlashSale.objects.select_for_update().get(id=sale_id)
    if sale.status in (SaleStatus.CANCELLED, SaleStatus.COMPLETED):
        raise ApplicationError(
            f"A {sale.status.lower()} sale cannot start.", status=409, code="sale_closed"
        )
    FlashSale.objects.filter(id=sale_id).update(start_time=Now(), status=SaleStatus.ACTIVE)
    sale.refresh_from_db()
    if sale.end_time <= sale.start_time:
        FlashSale.objects.filter(id=sale_id).update(end_time=sale.start_time + timedelta(hours=1))
        sale.refresh_from_db()
    _sale_publish_on_commit(sale.id)
    return sale


@transaction.atomic
def sale_cancel(*, sale_id: object) -> FlashSale:
    updated = FlashSale.objects.filter(
        id=sale_id, status__in=[SaleStatus.SCHEDULED, SaleStatus.ACTIVE]
    ).update(status=SaleStatus.CANCELLED)
    if not updated:
        raise ApplicationError(
            "Only a scheduled or active sale can be cancelled.", status=409, code="sale_closed"
        )
    _sale_publish_on_commit(sale_id)
    return FlashSale.objects.get(id=sale_id)


def sales_advance_status() -> int:
    """SCHEDULED → ACTIVE at the start and → COMPLETED at the end, by the database's clock."""
    started = list(
        FlashSale.objects.filter(
            status=SaleStatus.SCHEDULED, start_time__lte=Now(), end_time__gt=Now()
        ).values_list("id", flat=True)
    )
    ended = list(
        FlashSale.objects.filter(
            status__in=[SaleStatus.SCHEDULED, SaleStatus.ACTIVE], end_time__lte=Now()
        ).values_list("id", flat=True)
    )
    FlashSale.objects.filter(id__in=started, status=SaleStatus.SCHEDULED).update(
        status=SaleStatus.ACTIVE
    )
    FlashSale.objects.filter(id__in=ended).exclude(status=SaleStatus.CANCELLED).update(
        status=SaleStatus.COMPLETED
    )
    for sale_id in started + ended:
        sale_publish(sale_id=sale_id)
    return len(started) + len(ended)


def product_get_or_create(*, name: str, list_price: Decimal | None = None) -> Product:
    product, _ = Product.objects.get_or_create(name=name, defaults={"list_price": list_price})
    return product


def sale_phase(sale, *, units_left: int | None, now: datetime | None = None) -> str:
    """What a shopper sees: scheduled, live, sold_out, ended or cancelled."""
    now = now or timezone.now()
    if sale.status == SaleStatus.CANCELLED:
        return "cancelled"
    if sale.status == SaleStatus.COMPLETED or now >= sale.end_time:
        return "ended"
    if now < sale.start_time:
        return "scheduled"
    if units_left == 0:
        return "sold_out"
    return "live"
