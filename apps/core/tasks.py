from celery import shared_task

from . import accounts


@shared_task(name="core.inactive_accounts_restore", ignore_result=True)
def inactive_accounts_restore() -> None:
    accounts.inactive_accounts_restore()
