from django.conf import settings
from django.core.management.base import BaseCommand

from apps.waiting_room.releaser import Releaser


class Command(BaseCommand):
    help = "Admit shoppers from every open waiting room at each sale's rate (runs until stopped)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--tick", type=float, default=settings.WAITING_ROOM_TICK_SECONDS, help="seconds"
        )
        parser.add_argument("--for-seconds", type=float, default=None, help="stop after this")

    def handle(self, *args, tick: float, for_seconds: float | None, **options):
        self.stdout.write(f"releaser: ticking every {tick:.3f} s")
        try:
            Releaser(tick_seconds=tick).run(stop_after=for_seconds)
        except KeyboardInterrupt:
            pass
