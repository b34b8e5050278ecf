from django.core.management.base import BaseCommand, CommandError

from apps.payments.audit import payments_audit


class Command(BaseCommand):
    help = (
        "Compare the money at the gateways (charges kept, refunded, disputed) with our "
        "payments and order states, both ways; exits non-zero with a report when they differ."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days", type=float, default=1.0, help="how far back to look (0: all time)"
        )

    def handle(self, *args, days, **opts):
        report = payments_audit(days=days)
        self.stdout.write(report.render())
        if not report.clean:
            raise CommandError(f"{len(report.problems)} payment invariant(s) broken")
