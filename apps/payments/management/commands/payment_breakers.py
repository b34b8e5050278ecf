from django.core.management.base import BaseCommand

from apps.payments.gateways.base import gateway_names
from apps.payments.redis_scripts import breaker_snapshot


class Command(BaseCommand):
    help = "Show each payment gateway's circuit breaker state (shared by all workers)."

    def handle(self, *args, **options):
        for name in gateway_names():
            self.stdout.write(f"{name}: {breaker_snapshot(name) or 'closed'}")
