from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Now

from apps.core.redis import RedisError
from apps.sales.models import FlashSale, SaleStatus

from .reconcile import holds_sweep_orphans, inventory_reconcile


def _sales_in_play():
    return FlashSale.objects.filter(
        Q(status__in=[SaleStatus.SCHEDULED, SaleStatus.ACTIVE])
        | Q(end_time__gt=Now() - timedelta(days=1))
    ).values_list("id", flat=True)


@shared_task(name="inventory.reconcile_sale", ignore_result=True)
def reconcile_sale(sale_id: str) -> int:
    return inventory_reconcile(sale_id=sale_id).corrections


@shared_task(name="inventory.reconcile_all", ignore_result=True)
def reconcile_all() -> int:
    corrections = 0
    for sale_id in _sales_in_play():
        try:
            corrections += inventory_reconcile(sale_id=sale_id).corrections
        except RedisError:
            return corrections  # Redis is down: nothing to compare against now
    return corrections


@shared_task(name="inventory.sweep_orphans", ignore_result=True)
def sweep_orphans() -> int:
    released = 0
    for sale_id in _sales_in_play():
        try:
            released += holds_sweep_orphans(
                sale_id=sale_id, grace_seconds=settings.ORPHAN_GRACE_SECONDS
            )
        except RedisError:
            return released
    return released
