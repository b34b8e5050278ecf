"""A second install of the shop, run as its own processes (its own database, merchant
identity and Redis prefix) beside the test run's: ``python -m
apps.payments.tests.second_install pay N`` sells and pays N orders against the configured
gateway (charges run eagerly in this process, by the real service code) and prints them as
JSON; ``state`` prints its orders and payments."""

from __future__ import annotations

import json
import sys
import uuid
from datetime import timedelta
from decimal import Decimal


def main(argv: list[str]) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from apps.orders.models import Order
    from apps.orders.services import order_reserve
    from apps.payments.models import Payment
    from apps.payments.services import payment_create
    from apps.sales.selectors import sale_snapshot
    from apps.sales.services import product_get_or_create, sale_create, sale_publish

    if argv[0] == "pay":
        count = int(argv[1])
        start = timezone.now() - timedelta(seconds=1)
        sale = sale_create(
            product=product_get_or_create(name=f"Second install {uuid.uuid4().hex[:6]}"),
            price=Decimal("12.00"),
            total_inventory=count,
            start_time=start,
            end_time=start + timedelta(hours=1),
            max_per_user=1,
        )
        sale_publish(sale_id=sale.id)
        for _ in range(count):
            user = get_user_model().objects.create_user(username=f"b-{uuid.uuid4().hex[:10]}")
            body = order_reserve(
                sale=sale_snapshot(str(sale.id)),
                user_id=user.id,
                quantity=1,
                idempotency_key=uuid.uuid4().hex,
            ).body
            payment_create(
                order_id=body["order_id"], user_id=user.id, card_number="4242424242424242"
            )
    print(
        json.dumps(
            {
                "merchant_id": settings.PAYMENT_MERCHANT_ID,
                "orders": {str(o.id): o.status for o in Order.objects.all()},
                "payments": [
                    {"key": p.idempotency_key, "charge": p.gateway_charge_id, "status": p.status}
                    for p in Payment.objects.all()
                ],
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
