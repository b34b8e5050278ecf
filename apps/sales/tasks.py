from celery import shared_task

from .services import sales_advance_status


@shared_task(name="sales.advance_status", ignore_result=True)
def advance_status() -> int:
    return sales_advance_status()
