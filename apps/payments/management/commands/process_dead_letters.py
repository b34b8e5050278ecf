from django.core.management.base import BaseCommand

from apps.payments.services import dead_letters_process


class Command(BaseCommand):
    help = "Process charges that exhausted their retries (backup gateway, or release)."

    def handle(self, *args, **options):
        self.stdout.write(f"dead letters: {dead_letters_process() or 'none open'}")
