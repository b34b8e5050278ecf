from django.core.management.base import BaseCommand

from apps.payments.services import payments_reconcile


class Command(BaseCommand):
    help = "Reconcile the gateways' ledgers with our payments and orders (runs every minute)."

    def handle(self, *args, **options):
        report = payments_reconcile()
        if report.skipped:
            self.stdout.write("another reconciliation is running; nothing done")
            return
        self.stdout.write(
            f"checked {report.checked_charges} charge(s), {report.checked_pending} pending "
            f"payment(s); corrections: {report.actions or 'none'}"
        )
