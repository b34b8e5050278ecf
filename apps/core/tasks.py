from celery import shared_task


@shared_task(name="core.inactive_accounts_restore", ignore_result=True)
def inactive_accounts_restore() -> None:
    from .accounts import inactive_accounts_restore as restore

    restore()
