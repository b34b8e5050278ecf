from celery import shared_task

from .services import sale_events_notice


@shared_task(name="operations.notice_sale_events", ignore_result=True)
def notice_sale_events() -> int:
    return sale_events_notice()
