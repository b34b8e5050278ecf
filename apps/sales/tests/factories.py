"""Test data with factory-boy, made through the real services (a factory that wrote the rows
itself would skip what the services do). Sales."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from apps.sales.models import FlashSale
from apps.sales.services import product_get_or_create, sale_create, sale_publish


class SaleFactory(factory.Factory):
    """A sale made by ``sale_create``: its unit rows, Redis pool and snapshot."""

    class Meta:
        model = FlashSale

    product = factory.LazyFunction(
        lambda: product_get_or_create(name=f"Product {uuid.uuid4().hex[:8]}")
    )
    price = Decimal("10.00")
    total_inventory = 10
    start_time = factory.LazyFunction(lambda: timezone.now() - timedelta(seconds=1))
    end_time = factory.LazyAttribute(lambda sale: sale.start_time + timedelta(hours=1))
    max_per_user = 1

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        sale = sale_create(*args, **kwargs)
        # on_commit hooks do not run inside a test's transaction: publish explicitly.
        sale_publish(sale_id=sale.id)
        return sale
