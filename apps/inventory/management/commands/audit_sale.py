from django.core.management.base import BaseCommand, CommandError

from apps.inventory.audit import sale_audit
from apps.sales.selectors import sale_get


class Command(BaseCommand):
    help = "Check a sale's invariants; exits non-zero with a readable report when one fails."

    def add_arguments(self, parser):
        parser.add_argument("sale_id")

    def handle(self, *args, sale_id, **opts):
        if sale_get(sale_id=sale_id) is None:
            raise CommandError(f"No sale {sale_id}")
        report = sale_audit(sale_id=sale_id)
        self.stdout.write(report.render())
        if not report.clean:
            raise CommandError(f"{len(report.problems)} invariant(s) broken")
