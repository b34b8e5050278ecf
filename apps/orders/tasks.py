from celery import shared_task

from .services import orders_expire_all_due


@shared_task(name="orders.expire_reservations", ignore_result=True)
def expire_reservations() -> int:
    return orders_expire_all_due()
