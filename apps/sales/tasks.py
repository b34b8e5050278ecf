from celery import shared_task
from django.conf import settings

from .selectors import sales_cache_warm
from .services import sales_advance_status


@shared_task(name="sales.advance_status", ignore_result=True)
def advance_status() -> int:
    return sales_advance_status()


@shared_task(name="sales.cache_warm", ignore_result=True)
def cache_warm() -> int:
    """Keep the sale cache full ahead of every start (see selectors.sales_cache_warm)."""
    return sales_cache_warm(within_seconds=settings.SALE_CACHE_WARM_AHEAD_SECONDS)
