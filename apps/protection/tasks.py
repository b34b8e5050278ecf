from celery import shared_task

from apps.orders.services.degraded import degraded_sales_resync

from .flags import flag_record, flags_record_waiting


@shared_task(name="protection.record_flag", ignore_result=True)
def record_flag(user_id: int, ip: str, sale_id: str, score: int, reasons: list[str]) -> None:
    """One flag (the join screen used to queue each through the broker; kept for messages
    still queued)."""
    flag_record(user_id=user_id, ip=ip, sale_id=sale_id, score=score, reasons=reasons)


@shared_task(name="protection.record_flags", ignore_result=True)
def record_flags() -> None:
    """The flags the join screen queued in Redis, recorded in PostgreSQL in batches."""
    flags_record_waiting()


@shared_task(name="protection.resync_degraded_inventory", ignore_result=True)
def resync_degraded_inventory() -> None:
    degraded_sales_resync()
