from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.core.durations import parse_duration
from apps.sales.services import product_get_or_create, sale_create


class Command(BaseCommand):
    help = "Create a flash sale; prints the new sale's id alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--product", required=True, help="product name (created if new)")
        parser.add_argument("--inventory", type=int, required=True)
        parser.add_argument("--price", default="49.00")
        parser.add_argument("--starts-in", default="2m", help="e.g. 0s, 45s, 2m, 1h")
        parser.add_argument("--duration", default="30m")
        parser.add_argument("--max-per-user", type=int, default=1)
        parser.add_argument("--title", default="")
        parser.add_argument("--admission-rate", type=int, default=None)
        parser.add_argument("--pow-difficulty", type=int, default=None)
        parser.add_argument("--reservation-seconds", type=int, default=None)

    def handle(self, *args, **opts):
        try:
            starts_in = parse_duration(opts["starts_in"])
            duration = parse_duration(opts["duration"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        extra = {
            name: opts[name]
            for name in ("admission_rate", "pow_difficulty", "reservation_seconds")
            if opts[name] is not None
        }
        start = timezone.now() + starts_in
        try:
            sale = sale_create(
                product=product_get_or_create(name=opts["product"]),
                price=Decimal(opts["price"]),
                total_inventory=opts["inventory"],
                start_time=start,
                end_time=start + duration,
                max_per_user=opts["max_per_user"],
                title=opts["title"],
                **extra,
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stderr.write(
            f"Sale {sale} with {sale.total_inventory} units starts at "
            f"{sale.start_time:%H:%M:%S} UTC."
        )
        self.stdout.write(str(sale.id))
