from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils import timezone

from apps.sales.models import FlashSale, SaleStatus
from apps.sales.services import product_get_or_create, sale_create

DEMO_PRODUCT = "Aurora noise-cancelling headphones"
DEMO_SHOPPERS = ["alice", "bob", "carol", "dave"]
DEMO_PASSWORD = "shop-demo-pass"
ADMIN = ("admin", "admin-demo-pass")


class Command(BaseCommand):
    help = "Load the demo: a product, a sale starting in a couple of minutes, shoppers, an admin."

    def add_arguments(self, parser):
        parser.add_argument("--starts-in", type=int, default=120, help="seconds")
        parser.add_argument("--inventory", type=int, default=100)
        parser.add_argument(
            "--banner", action="store_true", help="print the demo's addresses and logins too"
        )

    def handle(self, *args, starts_in, inventory, banner, **opts):
        User = get_user_model()
        admin, created = User.objects.get_or_create(
            username=ADMIN[0], defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            admin.set_password(ADMIN[1])
            admin.save()
        for name in DEMO_SHOPPERS:
            user, created = User.objects.get_or_create(
                username=name, defaults={"email": f"{name}@example.com"}
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
        product = product_get_or_create(name=DEMO_PRODUCT, list_price=Decimal("349.00"))
        if not product.description:
            product.description = (
                "Studio-grade sound, 40-hour battery, adaptive noise "
                "cancelling. Limited launch edition."
            )
            product.save(update_fields=["description"])
        now = timezone.now()
        # Reuse a demo sale that still has most of its countdown ahead (a restart of the demo);
        # otherwise a fresh one, so the countdown starts when the shop is up, not at install.
        sale = (
            FlashSale.objects.filter(
                product=product,
                status=SaleStatus.SCHEDULED,
                start_time__gt=now + timedelta(seconds=starts_in / 2),
            )
            .order_by("start_time")
            .first()
        )
        if sale is None:
            start = now + timedelta(seconds=starts_in)
            sale = sale_create(
                product=product,
                price=Decimal("99.00"),
                total_inventory=inventory,
                start_time=start,
                end_time=start + timedelta(hours=2),
                max_per_user=1,
                title="Aurora launch drop",
                pow_difficulty=14,
            )
        if banner:
            self.stdout.write(demo_banner(sale, now=timezone.now()))
            return
        self.stdout.write(
            f"Demo sale {sale.id} ({sale.total_inventory} units) starts at "
            f"{sale.start_time:%H:%M:%S} UTC.\n"
            f"Shoppers: {', '.join(DEMO_SHOPPERS)} / password {DEMO_PASSWORD}\n"
            f"Admin: {ADMIN[0]} / {ADMIN[1]}"
        )


def demo_banner(sale, *, now) -> str:
    left = max(0, int((sale.start_time - now).total_seconds()))
    site = settings.SITE_URL.rstrip("/")
    mode = (
        "DEMO MODE: DEBUG off, keys of this checkout's own (var/demo.env), plain HTTP on "
        "loopback, test cards shown."
        if settings.DEMO_MODE
        else f"DEBUG={'on' if settings.DEBUG else 'off'}, DEMO_MODE off."
    )
    return f"""
  {mode}

  Shop:        {site}/
  Sale:        {site}/sales/{sale.id}/   "{sale.title}", {sale.total_inventory} units
               starts in {left // 60}:{left % 60:02d} (at {sale.start_time:%H:%M:%S} UTC)
  Admin:       {site}/admin/    ({ADMIN[0]} / {ADMIN[1]})
  API docs:    {site}/api/docs/
  WebSockets:  {settings.WS_PUBLIC_URL.rstrip("/")}/ws/
  Shoppers:    {", ".join(DEMO_SHOPPERS)}        (password {DEMO_PASSWORD})

  Logs in var/log/ (the console shows warnings only; VERBOSE=1 make run shows everything).
  A crashed process is restarted. Ctrl-C stops every process.
"""
