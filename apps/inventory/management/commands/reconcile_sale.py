from django.core.management.base import BaseCommand, CommandError

from apps.inventory.reconcile import inventory_reconcile
from apps.sales.selectors import sale_get


class Command(BaseCommand):
    help = "Reconcile a sale's Redis pool and shopper tallies with PostgreSQL (which wins)."

    def add_arguments(self, parser):
        parser.add_argument("sale_id")

    def handle(self, *args, sale_id, **opts):
        if sale_get(sale_id=sale_id) is None:
            raise CommandError(f"No sale {sale_id}")
        report = inventory_reconcile(sale_id=sale_id)
        self.stdout.write(f"Sale {sale_id}: {report.corrections} correction(s)")
        for note in report.notes:
            self.stdout.write(f"  {note}")
